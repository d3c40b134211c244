//! The operator commands, run as a user runs them: the real binary on a data directory.

use std::process::Command;

fn tidepool(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run tidepool")
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn token_create_prints_only_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&tidepool(
        dir.path(),
        &[
            "token",
            "create",
            "--account",
            "ci",
            "--scopes",
            "image:read",
        ],
    ));
    let token = out.trim_end();
    assert!(
        token.starts_with("dop_v1_") && !token.contains(char::is_whitespace),
        "{out:?}"
    );
    assert_eq!(out.lines().count(), 1);
    let again = stdout(&tidepool(
        dir.path(),
        &["token", "create", "--account", "ci"],
    ));
    assert_ne!(again.trim(), token);
}

#[test]
fn token_create_refuses_unknown_scopes_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = tidepool(
        dir.path(),
        &[
            "token",
            "create",
            "--account",
            "ci",
            "--scopes",
            "image:fly",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("image:fly"));
}

#[test]
fn operators_add_change_and_retire_public_images() {
    let dir = tempfile::tempdir().unwrap();
    let list = stdout(&tidepool(dir.path(), &["public", "list"]));
    assert!(list.contains("ubuntu-24-04-x64"), "{list}");
    let added = stdout(&tidepool(
        dir.path(),
        &[
            "public",
            "add",
            "--slug",
            "alpine-3-22-x64",
            "--name",
            "3.22 x64",
            "--min-disk-size",
            "5",
        ],
    ));
    assert!(
        added.starts_with("alpine-3-22-x64\t") && added.contains("available"),
        "{added}"
    );
    let dup = tidepool(
        dir.path(),
        &[
            "public",
            "add",
            "--slug",
            "alpine-3-22-x64",
            "--name",
            "again",
        ],
    );
    assert!(
        !dup.status.success() && String::from_utf8_lossy(&dup.stderr).contains("already taken")
    );
    let changed = stdout(&tidepool(
        dir.path(),
        &[
            "public",
            "update",
            "alpine-3-22-x64",
            "--name",
            "3.22.1 x64",
        ],
    ));
    assert!(changed.contains("3.22.1 x64"));
    let retired = stdout(&tidepool(
        dir.path(),
        &["public", "retire", "debian-12-x64"],
    ));
    assert!(retired.contains("retired"), "{retired}");
    let missing = tidepool(dir.path(), &["public", "retire", "no-such-slug"]);
    assert!(!missing.status.success());
}

#[test]
fn public_images_are_checked_as_the_api_checks_images() {
    let dir = tempfile::tempdir().unwrap();
    for (args, refusal) in [
        (
            &["--slug", "alpine-3-22-x64", "--name", ""][..],
            "name: must not be empty",
        ),
        (
            &["--slug", "alpine-3-22-x64", "--name", "   "][..],
            "name: must not be empty",
        ),
        (&["--slug", "", "--name", "Alpine"][..], "slug:"),
        (&["--slug", "Not A Slug", "--name", "Alpine"][..], "slug:"),
    ] {
        let out = tidepool(dir.path(), &[&["public", "add"][..], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was stored");
        assert!(stderr.contains(refusal), "{args:?}: {stderr}");
    }
    let renamed = tidepool(
        dir.path(),
        &["public", "update", "debian-12-x64", "--name", ""],
    );
    assert!(!renamed.status.success());
    assert!(String::from_utf8_lossy(&renamed.stderr).contains("name: must not be empty"));
    let list = stdout(&tidepool(dir.path(), &["public", "list"]));
    assert!(
        !list.contains("alpine"),
        "nothing refused was stored: {list}"
    );
    assert!(
        list.contains("debian-12-x64\t") && list.contains("12 x64"),
        "{list}"
    );
}
