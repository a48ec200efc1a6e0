//! The service's binary as a child process, for what only a real process shows:
//! `kill -9`, SIGTERM, the peak resident set. Shared by the api test target and
//! the memory and protocols benchmarks.

// Each target uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

/// How long a process may take to start listening: far longer than it takes on a
/// loaded machine, so only a process that never comes up reaches it.
pub const STARTUP: Duration = Duration::from_secs(120);

/// A port free when asked; the process binds it a moment later.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `audit-service serve` on 127.0.0.1:`port` over the SQLite file `db`, logging
/// warnings, its output discarded; the caller adds its keys and settings.
pub fn serve(db: &Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_audit-service"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("AUDIT_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// A gRPC channel to the process on `port`, once it listens.
pub async fn connect(port: u16) -> Channel {
    let deadline = Instant::now() + STARTUP;
    loop {
        match Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await {
            Ok(channel) => return channel,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("server did not come up: {e}"),
        }
    }
}

/// Returns once `/readyz` on `port` answers 200.
pub async fn wait_ready(port: u16) {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = stream.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            if answer.starts_with(b"HTTP/1.1 200") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become ready");
}

/// Peak resident set of a process, from the kernel's high-water mark.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
