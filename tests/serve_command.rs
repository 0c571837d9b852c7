//! `thaw serve` as a command: a missing database is one clear error that creates nothing.
//! (The web view itself is tested in a real browser in `crates/serve/tests/browser.rs`.)

mod common;

use common::thaw;

#[test]
fn serving_a_missing_database_is_an_error_that_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nothing.db");
    let out = thaw(dir.path(), &["serve", "--db", db.to_str().unwrap(), "--bind", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing.db") && err.contains("no such file"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "serve created a file");
}
