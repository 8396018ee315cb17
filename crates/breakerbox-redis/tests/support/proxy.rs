//! A TCP forwarder on 127.0.0.1 standing for what operators put in front of a Redis
//! failover without Sentinel-aware clients (a virtual IP, a DNS name, HAProxy with
//! `on-marked-down shutdown-sessions`): clients connect to one address, and
//! [`switch`](Proxy::switch) points it at another server and cuts the open sessions.
//! Threads and std only; not part of `support/mod.rs` (the benches and the crate's own
//! tests include that), so a test file includes it with `#[path]`.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A forwarder from its own port to a backend port on 127.0.0.1.
pub struct Proxy {
    port: u16,
    backend: Arc<AtomicU16>,
    sessions: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on a free port and forwards every connection to `backend`.
    pub fn start(backend: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("an address").port();
        let proxy =
            Self { port, backend: Arc::new(AtomicU16::new(backend)), sessions: Arc::default(), stop: Arc::default() };
        let (to, sessions, stop) = (proxy.backend.clone(), proxy.sessions.clone(), proxy.stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect_timeout(
                    &([127, 0, 0, 1], to.load(Ordering::SeqCst)).into(),
                    Duration::from_secs(1),
                ) else {
                    // Nothing behind the address: the client sees the connection closed.
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                {
                    let mut open = sessions.lock().unwrap();
                    open.retain(|s: &TcpStream| s.peer_addr().is_ok());
                    open.extend([client.try_clone(), server.try_clone()].into_iter().flatten());
                }
                for (mut from, mut into) in
                    [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || into.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = into.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        proxy
    }

    /// `redis://127.0.0.1:<port>`: the address the clients know.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a valid url")
    }

    /// Points new connections at `backend` and closes every open session, as a load
    /// balancer does when it marks the old server down.
    pub fn switch(&self, backend: u16) {
        self.backend.store(backend, Ordering::SeqCst);
        for s in self.sessions.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.switch(0);
    }
}
