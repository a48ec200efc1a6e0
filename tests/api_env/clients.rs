//! The contract's own client examples (JavaScript fetch, Python httpx), run
//! unchanged against the real server; they must get what a Rust client gets.

use tokio::process::Command;

use crate::fixtures::event;
use crate::server::{TestServer, http1, reader, rest_summary};

/// Runs one example client and reads the JSON it prints.
async fn run(program: &str, args: &[&str]) -> serde_json::Value {
    let output = Command::new(program).args(args).output().await.unwrap_or_else(|e| panic!("{program} starts: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{program} failed: {stderr}");
    serde_json::from_slice(&output.stdout).expect("client prints JSON")
}

pub async fn javascript_example_gets_the_same_answer() {
    same_answer("node", "summary.mjs").await;
}

pub async fn python_example_gets_the_same_answer() {
    same_answer("python3", "summary.py").await;
}

/// The summary `script` gets through `program` equals the one a Rust client gets.
async fn same_answer(program: &str, script: &str) {
    let server = TestServer::start().await;
    server
        .seed(vec![
            event("c1", "org_a", "session.login", "failure", "2026-03-02T10:00:00Z"),
            event("c2", "org_a", "session.login", "success", "2026-03-02T11:00:00Z"),
            event("c3", "org_b", "user.password.changed", "success", "2026-03-02T12:00:00Z"),
        ])
        .await;
    // Offsets with '+', which form encoding must carry as %2B.
    let (start, end) = ("2026-03-02T11:00:00+01:00", "2026-03-02T13:00:00+01:00");
    let query = format!("start_time={}&end_time={}", start.replace('+', "%2B"), end.replace('+', "%2B"));
    let expected: serde_json::Value =
        rest_summary(&http1(), &server.base, &query, &reader()).await.json().await.unwrap();
    assert_eq!(expected["buckets"].as_array().unwrap().len(), 1);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
    let token = reader();
    let args = [format!("{dir}/{script}"), server.base.clone(), token, start.into(), end.into()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let answer = run(program, &args).await;
    assert_eq!(answer["status"], 200, "{program}");
    assert_eq!(answer["body"], expected, "{program}");
    server.stop().await;
}
