//! What both HTTP benches share: a loopback server.

/// An axum server on 127.0.0.1, on its own thread and runtime, answering `ok`; its URL.
pub(crate) fn start_server() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new().fallback(|| async { "ok" });
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/item/42", rx.recv().unwrap())
}
