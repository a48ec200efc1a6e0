//! Checks that live outside Rust but belong to "every test": the dashboard in a
//! real headless Chromium, schemathesis against the OpenAPI document, and the
//! deployment checks. Each needs tools a laptop
//! may lack; without them it says loudly that it skipped, and under CI it fails.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `Some(reason)` when a prerequisite is missing and the check may be skipped.
fn missing(prerequisites: &[(&str, bool)]) -> Option<String> {
    let absent: Vec<&str> = prerequisites.iter().filter(|(_, present)| !present).map(|(name, _)| *name).collect();
    if absent.is_empty() {
        return None;
    }
    let reason = format!("missing {}", absent.join(", "));
    assert!(std::env::var_os("CI").is_none(), "under CI every check must run, but: {reason} (see .ci/run)");
    Some(reason)
}

fn run(label: &str, command: &mut Command) {
    let status = command.status().unwrap_or_else(|e| panic!("{label} did not start: {e}"));
    assert!(status.success(), "{label} failed ({status})");
}

fn on_path(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn dashboard_matches_the_api_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node_modules = Path::new(ROOT).join("web/node_modules/playwright-core");
    if let Some(reason) = missing(&[
        ("chromium", Path::new(&chromium).exists()),
        ("node", on_path("node")),
        ("web/node_modules (cd web && npm ci)", node_modules.exists()),
    ]) {
        eprintln!("SKIPPED: dashboard browser test ({reason})");
        return;
    }
    // The committed build must be exactly what the sources build to.
    run("npm run check", Command::new("npm").args(["run", "--silent", "check"]).current_dir(format!("{ROOT}/web")));
    run(
        "web/run-browser-test.sh",
        Command::new("bash")
            .arg("web/run-browser-test.sh")
            .current_dir(ROOT)
            .env("AUDIT_BIN", env!("CARGO_BIN_EXE_audit-service")),
    );
}

#[test]
fn deployment_manifests_image_and_database_grants_check_out() {
    if let Some(reason) = missing(&[
        (
            "kubernetes-validate, hadolint, shellcheck (pip install -r deploy/requirements-check.txt)",
            on_path("kubernetes-validate") && on_path("hadolint") && on_path("shellcheck"),
        ),
        ("pg_isready", on_path("pg_isready")),
    ]) {
        eprintln!("SKIPPED: deployment checks ({reason})");
        return;
    }
    run("deploy/check.sh", Command::new("bash").arg("deploy/check.sh").current_dir(ROOT));
}

#[test]
fn rest_surface_holds_its_openapi_document_under_schemathesis() {
    if let Some(reason) = missing(&[("schemathesis (pip install schemathesis)", on_path("schemathesis"))]) {
        eprintln!("SKIPPED: schemathesis run ({reason})");
        return;
    }
    run(
        "scripts/schemathesis.sh",
        Command::new("bash")
            .arg("scripts/schemathesis.sh")
            .current_dir(ROOT)
            .env("AUDIT_BIN", env!("CARGO_BIN_EXE_audit-service")),
    );
}
