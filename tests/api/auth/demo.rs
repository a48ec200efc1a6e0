//! Demo mode never signs with an operator's key: the real binary refuses `serve --demo` when
//! any key setting is present, naming it, before it listens or touches a database.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY_SETTINGS: [(&str, &str); 4] = [
    ("AUDIT_JWT_SECRET", "an-operator-secret-that-is-long-enough-0123"),
    ("AUDIT_JWKS_URL", "https://id.example/.well-known/jwks.json"),
    ("AUDIT_JWT_ISSUER", "https://id.example"),
    ("AUDIT_JWT_AUDIENCE", "audit-api"),
];

/// Runs `serve --demo` with the given settings; the exit status and standard error, or a
/// panic if it is still running (serving) at the deadline.
fn demo_with(settings: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_audit-service"));
    command
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .env("AUDIT_DATABASE_URL", format!("sqlite://{}", dir.path().join("demo.db").display()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, _) in KEY_SETTINGS {
        command.env_remove(name);
    }
    for (name, value) in settings {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("binary starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            return (output.status, String::from_utf8_lossy(&output.stderr).into_owned());
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("serve --demo with {settings:?} was still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn demo_refuses_to_start_with_any_key_setting() {
    for setting in KEY_SETTINGS {
        let (status, stderr) = demo_with(&[setting]);
        assert!(!status.success(), "{}: exited {status}", setting.0);
        assert!(stderr.contains("--demo cannot be combined with"), "{}: {stderr}", setting.0);
        assert!(stderr.contains(setting.0), "{}: the message names it: {stderr}", setting.0);
        assert!(stderr.contains("generates itself"), "{}: the message says why: {stderr}", setting.0);
        for (other, _) in KEY_SETTINGS.iter().filter(|(other, _)| *other != setting.0) {
            assert!(!stderr.contains(other), "{}: names {other}, which was not set: {stderr}", setting.0);
        }
    }
    let (status, stderr) = demo_with(&KEY_SETTINGS);
    assert!(!status.success());
    for (name, _) in KEY_SETTINGS {
        assert!(stderr.contains(name), "all named at once: {stderr}");
    }
}
