//! Checks that live outside Rust but belong to "every test": the dashboard in a
//! real headless Chromium, schemathesis against the OpenAPI document, and the
//! deployment checks. Each needs tools a laptop may lack; without them it is listed
//! as ignored, with what is missing, and under CI it fails.

#[path = "../common/trials.rs"]
mod trials;

use std::path::Path;
use std::process::Command;

use trials::{all_of, file, program, trial};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let browser = all_of([
        (!Path::new(&chromium).exists()).then(|| format!("no Chromium at {chromium} (apt-get install chromium)")),
        program("node", "install Node.js"),
        program("npm", "install Node.js"),
        file("web/node_modules/playwright-core", "cd web && npm ci"),
    ]);
    let validators = "pip install -r deploy/requirements-check.txt";
    let deploy = all_of([
        program("kubernetes-validate", validators),
        program("hadolint", validators),
        program("shellcheck", validators),
        program("pg_isready", "install the PostgreSQL client"),
    ]);
    let schemathesis = program("schemathesis", "pip install schemathesis");
    trials::run(vec![
        trial(
            "dashboard_matches_the_api_in_headless_chromium",
            browser,
            dashboard_matches_the_api_in_headless_chromium,
        ),
        trial(
            "deployment_manifests_image_and_database_grants_check_out",
            deploy,
            deployment_manifests_image_and_database_grants_check_out,
        ),
        trial(
            "rest_surface_holds_its_openapi_document_under_schemathesis",
            schemathesis,
            rest_surface_holds_its_openapi_document_under_schemathesis,
        ),
    ])
}

/// Runs a check's command with pip's script directories on PATH, where the tools
/// it looks up by name may have been installed.
fn run(label: &str, command: &mut Command) {
    let status = command
        .env("PATH", trials::path_with_pip_scripts())
        .status()
        .unwrap_or_else(|e| panic!("{label} did not start: {e}"));
    assert!(status.success(), "{label} failed ({status})");
}

fn dashboard_matches_the_api_in_headless_chromium() {
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

fn deployment_manifests_image_and_database_grants_check_out() {
    run("deploy/check.sh", Command::new("bash").arg("deploy/check.sh").current_dir(ROOT));
}

fn rest_surface_holds_its_openapi_document_under_schemathesis() {
    run(
        "scripts/schemathesis.sh",
        Command::new("bash")
            .arg("scripts/schemathesis.sh")
            .current_dir(ROOT)
            .env("AUDIT_BIN", env!("CARGO_BIN_EXE_audit-service")),
    );
}
