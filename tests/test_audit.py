"""The audit log: records of calls, results and spoke lifecycles, chained by SHA-256, checked by
`bulkhead audit verify`, shown by `audit tail` and written by `audit export`."""

import json

import manifests

SECRET = "do-not-log-this-value"


def audit_records(bulkhead) -> list[dict]:
    lines = (bulkhead.state_dir / "audit.log").read_text().splitlines()
    return [json.loads(line) for line in lines]


def audit(bulkhead, *args: str) -> tuple[int, str, str]:
    return bulkhead.cli("audit", *args, "--state", str(bulkhead.state_dir))


def test_calls_and_spokes_are_recorded_and_verify(hub):
    bulkhead = hub({"probe": manifests.probe()})
    code, _, err = bulkhead.cli("call", "probe", "read_file", "--args", json.dumps({"path": f"/{SECRET}"}))
    assert code == 0, err
    bulkhead.restart()
    bulkhead.call_json("probe", "getpid")

    records = audit_records(bulkhead)
    kinds = [record["kind"] for record in records]
    assert kinds.count("call") == 2 and kinds.count("call_result") == 2, kinds
    assert "spoke_start" in kinds and "spoke_stop" in kinds, kinds
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    call = next(record for record in records if record["kind"] == "call")
    assert call["fields"]["app"] == "probe" and call["fields"]["tool"] == "read_file"
    assert set(call["fields"]["arguments"]) == {"sha256", "bytes"}, call
    assert SECRET not in (bulkhead.state_dir / "audit.log").read_text()

    code, out, err = audit(bulkhead, "verify")
    assert code == 0, err
    assert f"{len(records)} records verified" in out

    code, out, err = audit(bulkhead, "tail", "-n", "2", "--json")
    assert code == 0, err
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [len(records) - 1, len(records)]

    code, out, err = audit(bulkhead, "export")
    assert code == 0, err
    assert out == (bulkhead.state_dir / "audit.log").read_text()


def test_changed_byte_fails_verification_and_names_the_record(hub):
    bulkhead = hub({"probe": manifests.probe()})
    bulkhead.call_json("probe", "getpid")
    bulkhead.stop()
    path = bulkhead.state_dir / "audit.log"
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 3, lines
    second = bytearray(lines[1])
    index = second.index(b'"kind":"') + len(b'"kind":"')
    second[index] ^= 0x01
    lines[1] = bytes(second)
    path.write_bytes(b"".join(lines))

    code, _, err = audit(bulkhead, "verify")
    assert code == 1
    assert "record 2 " in err, err
    assert "verification failed" in err


def test_record_arguments_stores_them_in_full(hub):
    bulkhead = hub({"probe": manifests.probe()}, start=False)
    with open(bulkhead.config_path, "a") as config:
        config.write("\n[audit]\nrecord_arguments = true\n")
    bulkhead.start()
    bulkhead.call_json("probe", "sleep", {"seconds": 0})
    call = next(record for record in audit_records(bulkhead) if record["kind"] == "call")
    assert call["fields"]["arguments"] == {"json": {"seconds": 0}}
