use serde_json::Value;

use super::*;

#[tokio::test]
async fn records_chain_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = AuditLog::open(dir.path(), false).expect("open");
    assert_eq!(
        log.record("call", fields([("app", Value::from("notes"))]))
            .await
            .expect("record"),
        1
    );
    assert_eq!(
        log.record("call", fields([("app", Value::from("mail"))]))
            .await
            .expect("record"),
        2
    );
    drop(log);
    let log = AuditLog::open(dir.path(), false).expect("reopen");
    assert_eq!(
        log.record("remove", fields([("app", Value::from("mail"))]))
            .await
            .expect("record"),
        3
    );
    let report = bulkhead_audit::verify_file(&dir.path().join(FILE_NAME))
        .expect("read")
        .expect("verify");
    assert_eq!(report.records, 3);
}

#[test]
fn broken_log_stops_the_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(FILE_NAME), "not a record\n").expect("write");
    let error = AuditLog::open(dir.path(), false)
        .err()
        .expect("a broken log must not open");
    assert!(error.to_string().contains("record 1"), "{error}");
}

#[test]
fn arguments_are_digested_unless_recording_is_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let digested = AuditLog::open(dir.path(), false)
        .expect("open")
        .arguments(r#"{"body":"secret"}"#);
    assert_eq!(digested["bytes"], 17);
    assert!(!digested.to_string().contains("secret"));
    let other = tempfile::tempdir().expect("temp dir");
    let recorded = AuditLog::open(other.path(), true)
        .expect("open")
        .arguments(r#"{"body":"secret"}"#);
    assert_eq!(recorded["json"]["body"], "secret");
}

#[tokio::test]
async fn full_disk_fails_the_record() {
    // /dev/full rejects every write with ENOSPC, as a full file system does.
    let file = match OpenOptions::new().append(true).open("/dev/full") {
        Ok(file) => file,
        Err(error) => {
            eprintln!("skipped: cannot open /dev/full: {error}");
            return;
        }
    };
    let log = AuditLog::with_file(
        PathBuf::from("/dev/full"),
        file,
        1,
        bulkhead_audit::GENESIS.into(),
        0,
        false,
    );
    let error = log
        .record("call", fields([]))
        .await
        .expect_err("a full disk must fail the record");
    assert!(
        error.to_string().contains("cannot write the audit log"),
        "{error}"
    );
}
