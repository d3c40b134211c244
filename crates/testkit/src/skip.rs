//! The skip protocol; the crate's documentation describes it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Set to `1`, it turns every [`skip`] into a failure.
pub const NO_SKIP_VAR: &str = "TIDEPOOL_TEST_NO_SKIP";
/// Names a file every [`skip`] appends its line to.
pub const SKIP_LOG_VAR: &str = "TIDEPOOL_TEST_SKIP_LOG";

/// Reports that `test` does not run because of `why` (what is missing, and how to provide it),
/// or panics if `TIDEPOOL_TEST_NO_SKIP=1`. The caller returns right after.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    let no_skip = std::env::var(NO_SKIP_VAR).is_ok_and(|v| v == "1");
    let log = std::env::var_os(SKIP_LOG_VAR)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from);
    report_skip(test, why, no_skip, log.as_deref(), &mut std::io::stderr());
}

/// The S3 bucket tests may use (`TIDEPOOL_TEST_S3_BUCKET`, with the `AWS_*` variables
/// `scripts/garage start` prints), or `None` after a [`skip`] for `test`.
#[track_caller]
pub fn s3_bucket(test: &str) -> Option<String> {
    match std::env::var("TIDEPOOL_TEST_S3_BUCKET") {
        Ok(bucket) if !bucket.is_empty() => Some(bucket),
        _ => {
            skip(
                test,
                "set TIDEPOOL_TEST_S3_BUCKET and AWS_* (`scripts/test` starts a Garage and sets them) to run it against S3",
            );
            None
        }
    }
}

/// [`skip`] with its environment passed in, so that it can be tested without setting variables
/// that every other test of the process would see.
#[track_caller]
fn report_skip(test: &str, why: &str, no_skip: bool, log: Option<&Path>, stderr: &mut dyn Write) {
    assert!(
        !no_skip,
        "{test} cannot run: {why} (and {NO_SKIP_VAR}=1 makes a skip a failure)"
    );
    // A closed stderr must not fail the test; the log below still counts the skip.
    let _ = writeln!(stderr, "SKIPPED {test}: {why}");
    if let Some(path) = log {
        // One write of the whole line to a file opened for appending: lines of concurrent tests
        // (threads of one binary, or several binaries) cannot interleave.
        let line = format!("{test}: {why}\n");
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .unwrap_or_else(|e| {
                panic!(
                    "{SKIP_LOG_VAR}={}: cannot append to it: {e}",
                    path.display()
                )
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_skip_is_announced_on_stderr_and_appended_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips.log");
        let mut stderr = Vec::new();
        report_skip("first", "no bucket", false, Some(&log), &mut stderr);
        report_skip("second", "no database", false, Some(&log), &mut stderr);
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            "SKIPPED first: no bucket\nSKIPPED second: no database\n"
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "first: no bucket\nsecond: no database\n"
        );
    }

    #[test]
    fn without_a_log_only_stderr_hears_of_it() {
        let mut stderr = Vec::new();
        report_skip("quiet", "no tools", false, None, &mut stderr);
        assert_eq!(stderr, b"SKIPPED quiet: no tools\n");
    }

    #[test]
    #[should_panic(expected = "needs_s3 cannot run: no bucket")]
    fn no_skip_makes_a_skip_fail() {
        report_skip("needs_s3", "no bucket", true, None, &mut Vec::new());
    }

    #[test]
    fn lines_of_concurrent_skips_do_not_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips.log");
        let why = "x".repeat(300);
        std::thread::scope(|s| {
            for thread in 0..8 {
                let (log, why) = (&log, &why);
                s.spawn(move || {
                    for n in 0..50 {
                        let test = format!("t{thread}-{n}");
                        report_skip(&test, why, false, Some(log), &mut std::io::sink());
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 8 * 50);
        for line in text.lines() {
            let (test, rest) = line.split_once(": ").unwrap();
            assert!(test.starts_with('t') && rest == why, "{line:?}");
        }
    }

    /// Run only by `skip_reads_its_environment`, in a child process whose environment it sets.
    #[test]
    #[ignore = "a child of skip_reads_its_environment"]
    fn child_that_skips() {
        if std::env::var_os("TIDEPOOL_TESTKIT_CHILD").is_some() {
            skip("child_that_skips", "nothing to run against");
        }
    }

    fn run_child(env: &[(&str, &std::ffi::OsStr)]) -> std::process::Output {
        let name = concat!(module_path!(), "::child_that_skips");
        let name = name.split_once("::").unwrap().1;
        let mut child = Command::new(std::env::current_exe().unwrap());
        child
            .args([name, "--exact", "--ignored", "--test-threads=1"])
            .env("TIDEPOOL_TESTKIT_CHILD", "1")
            .env_remove(NO_SKIP_VAR)
            .env_remove(SKIP_LOG_VAR);
        for (var, value) in env {
            child.env(var, value);
        }
        child.output().unwrap()
    }

    #[test]
    fn skip_reads_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips.log");

        let out = run_child(&[(SKIP_LOG_VAR, log.as_os_str())]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("running 1 test"),
            "{out:?}"
        );
        // Shown although the harness captured the test's output.
        assert!(
            stderr.contains("SKIPPED child_that_skips: nothing to run against\n"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "child_that_skips: nothing to run against\n"
        );

        let out = run_child(&[(NO_SKIP_VAR, "1".as_ref()), (SKIP_LOG_VAR, log.as_os_str())]);
        // The harness prints a failed test's panic with its captured output.
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{output}");
        assert!(
            output.contains("child_that_skips cannot run: nothing to run against"),
            "{output}"
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap().lines().count(),
            1,
            "a failed skip is not logged as a skip"
        );
    }
}
