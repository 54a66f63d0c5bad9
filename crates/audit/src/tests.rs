use serde_json::{json, Map, Value};

use super::*;

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(object) => object,
        other => panic!("not an object: {other}"),
    }
}

fn log(records: usize) -> String {
    let mut prev = GENESIS.to_string();
    let mut text = String::new();
    for i in 0..records {
        let sealed = seal(
            i as u64 + 1,
            "2026-01-01T00:00:00Z",
            "call",
            fields(json!({"app": "notes", "n": i})),
            &prev,
        );
        text.push_str(&sealed.line);
        text.push('\n');
        prev = sealed.hash;
    }
    text
}

#[test]
fn empty_log_verifies() {
    assert_eq!(
        verify(b"").expect("verify"),
        Report {
            records: 0,
            head: GENESIS.to_string()
        }
    );
}

#[test]
fn sealed_chain_verifies() {
    let report = verify(log(3).as_bytes()).expect("verify");
    assert_eq!(report.records, 3);
}

#[test]
fn every_changed_byte_is_detected_and_names_its_record() {
    let text = log(3);
    let second_start = text.find('\n').expect("newline") + 1;
    let second_end = second_start + text[second_start..].find('\n').expect("newline");
    for index in second_start..second_end {
        let mut bytes = text.clone().into_bytes();
        bytes[index] ^= 0x01;
        let error = verify(&bytes).expect_err("a changed byte must fail");
        assert_eq!(error.record, 2, "byte {index}: {error}");
    }
}

#[test]
fn removed_record_is_detected() {
    let text = log(3);
    let lines: Vec<&str> = text.lines().collect();
    let without = format!("{}\n{}\n", lines[0], lines[2]);
    let error = verify(without.as_bytes()).expect_err("a removed record must fail");
    assert_eq!(error.record, 2);
    assert!(error.reason.contains("removed or reordered"), "{error}");
}

#[test]
fn reordered_records_are_detected() {
    let text = log(3);
    let lines: Vec<&str> = text.lines().collect();
    let swapped = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1]);
    let error = verify(swapped.as_bytes()).expect_err("reordered records must fail");
    assert_eq!(error.record, 2);
}

#[test]
fn digest_fields_hold_hash_and_size() {
    let value = digest_fields(b"abc");
    assert_eq!(value["bytes"], 3);
    assert_eq!(
        value["sha256"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
