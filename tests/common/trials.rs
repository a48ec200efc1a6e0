//! The harness of the test targets whose tests need what a machine may lack
//! (PostgreSQL, node, python packages, Chromium, pip-installed tools): each test is
//! a trial that runs when its need is met, is counted and shown as
//! `ignored (reason)` when not, and fails under CI, where nothing may be skipped.
//! Shared by the store, api_env and external targets (`harness = false`).

#![allow(dead_code)]

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Why a test cannot run here, or `None` when it can.
pub type Missing = Option<String>;

/// Runs the trials as libtest would, with its arguments, output and exit status.
pub fn run(trials: Vec<Trial>) -> ! {
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}

pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// A test that runs `body` unless `missing` says why it cannot; then it is ignored,
/// or failed under CI. A panicking body fails the test.
pub fn trial(name: impl Into<String>, missing: Missing, body: impl FnOnce() + Send + 'static) -> Trial {
    let name = name.into();
    let thread_name = name.clone();
    Trial::ignorable_test(name, move || match missing {
        None => {
            // On a thread named after the test, as libtest does: output is not captured
            // here, so panics and notes (seeds) must say which test they come from.
            let ran = std::thread::Builder::new().name(thread_name).spawn(body).expect("test thread").join();
            if let Err(panic) = ran {
                std::panic::resume_unwind(panic);
            }
            Ok(Completion::Completed)
        }
        Some(reason) if under_ci() => {
            Err(Failed::from(format!("under CI every test must run, but {reason} (see .ci/run)")))
        }
        Some(reason) => Ok(Completion::ignored_with(reason)),
    })
}

/// Every reason among several, so a test needing many things names all that is missing.
pub fn all_of(needs: impl IntoIterator<Item = Missing>) -> Missing {
    let absent: Vec<String> = needs.into_iter().flatten().collect();
    (!absent.is_empty()).then(|| absent.join(", "))
}

/// Runs an async test as `#[tokio::test]` does: on a current-thread runtime of its own.
pub fn block_on(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test runtime").block_on(test)
}

/// As `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`.
pub fn block_on_two_workers(test: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    runtime.expect("test runtime").block_on(test)
}

/// `Some("no PROGRAM")` unless `program` is found (see [`find_program`]).
pub fn program(program: &str, hint: &str) -> Missing {
    find_program(program).is_none().then(|| format!("no {program} ({hint})"))
}

/// `Some(reason)` unless python3 imports `module`.
pub fn python_module(module: &str) -> Missing {
    let imported = Command::new("python3").args(["-c", &format!("import {module}")]).output();
    (!imported.is_ok_and(|o| o.status.success())).then(|| format!("no python {module} (pip install {module})"))
}

/// `Some(reason)` unless `path` (relative to the crate) exists.
pub fn file(path: &str, hint: &str) -> Missing {
    (!Path::new(env!("CARGO_MANIFEST_DIR")).join(path).exists()).then(|| format!("no {path} ({hint})"))
}

/// Where `program` is: on PATH, or where pip puts console scripts, which pyenv and
/// `--user` installs keep off PATH (deploy/check.sh looks in the same places).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(pip_script_dirs()).map(|dir| dir.join(program)).find(|file| executable(file))
}

/// PATH with pip's script directories after it, for scripts that look tools up by name.
pub fn path_with_pip_scripts() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).chain(pip_script_dirs()).collect();
    std::env::join_paths(dirs).expect("PATH entries join")
}

/// The interpreter's scripts directory and the user scheme's, as python3 reports them.
fn pip_script_dirs() -> Vec<PathBuf> {
    let script = "import os, sysconfig\n\
                  print(sysconfig.get_path('scripts'))\n\
                  print(sysconfig.get_path('scripts', os.name + '_user'))";
    match Command::new("python3").args(["-c", script]).output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect()
        }
        _ => Vec::new(),
    }
}

fn executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The trial of `module::test`, an async test run on `runtime` (`block_on` or
/// `block_on_two_workers`) when `missing` is `None`; named as libtest would name it.
#[allow(unused_macros)]
macro_rules! async_trial {
    ($missing:expr, $runtime:ident, $module:ident :: $test:ident) => {
        $crate::trials::trial(concat!(stringify!($module), "::", stringify!($test)), $missing, || {
            $crate::trials::$runtime($module::$test())
        })
    };
}
#[allow(unused_imports)]
pub(crate) use async_trial;
