"""Live approvals of cross-app flows: `bulkhead approvals` watches the requests, `bulkhead approve`
and `bulkhead deny` decide them, and `bulkhead grants` lists and revokes the stored decisions. The
flows come from the private and public repository apps of tests/repos.py."""

from __future__ import annotations

import json
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from grpc_client import agent, hub_pb2, open_channel
from approver import EVENT_TIMEOUT, Approver
from repos import MARKER, NOBODY, audit_kinds, call, exfiltration, nobody_client, repo_manifests, repos  # noqa: F401

def pending_approvals(bulkhead) -> int:
    return bulkhead.cli_json("status")["pending_approvals"]


def append_config(bulkhead, text: str) -> None:
    with open(bulkhead.config_path, "a") as config:
        config.write("\n" + text)


def test_approve_once_lets_one_call_through(hub, repos):
    bulkhead = hub(repo_manifests(*repos))
    session = str(uuid.uuid4())
    body = f"Copied: {MARKER} " + "x" * 5000
    # Real whitespace between the JSON tokens, which the request shows collapsed.
    arguments_json = '{"title":   "Sync",\n\n  "body": "' + body + '"}'
    create_pr = hub_pb2.CallToolRequest(app="repo_public", tool="create_pr", arguments_json=arguments_json, session_id=session)

    with open_channel(bulkhead.socket) as channel:
        stub = agent(channel)
        with pytest.raises(grpc.RpcError) as unattended:
            exfiltration(stub, session, body)
        assert unattended.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "no approver is attached" in unattended.value.details()

        with Approver(bulkhead) as approver, ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(stub.CallTool, create_pr, timeout=90)
            request = approver.next_event("request")
            assert not waiting.done(), "create_pr waits for a decision"
            assert request["principal"] == "uid:0"
            assert request["session"] == session
            assert (request["source_app"], request["target_app"], request["tool"]) == ("repo_private", "repo_public", "create_pr")
            assert request["rule"] == "confidential"
            assert request["destructive"] is True
            assert request["arguments"] == '{"title": "Sync", "body": "' + body + '"}'
            assert pending_approvals(bulkhead) == 1

            code, out, err = bulkhead.cli("approve", request["id"], "--once")
            assert code == 0, err
            assert out.strip() == f"approved request {request['id']} once"
            assert "opened pull request" in waiting.result(timeout=EVENT_TIMEOUT).text
            settled = approver.next_event("settled")
            assert settled == {"event": "settled", "id": request["id"], "outcome": "approved once by uid:0"}
            assert pending_approvals(bulkhead) == 0

            # Once means once: the same call makes a new request, and this time it is denied.
            second = pool.submit(stub.CallTool, create_pr, timeout=90)
            again = approver.next_event("request")
            assert again["id"] != request["id"]
            code, out, err = bulkhead.cli("deny", again["id"])
            assert code == 0, err
            with pytest.raises(grpc.RpcError) as refused:
                second.result(timeout=EVENT_TIMEOUT)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert f"the approver uid:0 denied request {again['id']}" in refused.value.details()
            assert "repo_private" in refused.value.details()
            assert "repo_public/create_pr" in refused.value.details()

    decisions = [(d["decision"], d["by"], d["request"]) for d in audit_kinds(bulkhead, "flow_decision")]
    assert decisions == [
        ("deny", "no approver", ""),
        ("allow", "approver uid:0 (once)", request["id"]),
        ("deny", "approver uid:0 (deny)", again["id"]),
    ]
    assert [r["request"] for r in audit_kinds(bulkhead, "approval_request")] == [request["id"], again["id"]]
    assert [d["decision"] for d in audit_kinds(bulkhead, "approval_decision")] == ["once", "deny"]
    assert audit_kinds(bulkhead, "grant") == []
    code, _, err = bulkhead.cli("audit", "verify", "--state", str(bulkhead.state_dir))
    assert code == 0, err


def test_session_grant_applies_to_its_session_only(hub, repos):
    bulkhead = hub(repo_manifests(*repos))
    session = str(uuid.uuid4())
    with open_channel(bulkhead.socket) as channel:
        stub = agent(channel)
        with Approver(bulkhead) as approver, ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(exfiltration, stub, session, f"Copied: {MARKER}")
            request = approver.next_event("request")
            code, out, err = bulkhead.cli("approve", request["id"], "--session")
            assert code == 0, err
            assert f"for session {session}: grant " in out
            assert "opened pull request" in waiting.result(timeout=EVENT_TIMEOUT).text

        # With no approver attached, the grant still allows the flow in its session ...
        again = call(stub, session, "repo_public", "create_pr", {"title": "Again", "body": MARKER})
        assert "opened pull request" in again.text
        # ... and nowhere else.
        with pytest.raises(grpc.RpcError) as denied:
            exfiltration(stub, str(uuid.uuid4()), f"Copied: {MARKER}")
        assert "no approver is attached" in denied.value.details()

    grants = bulkhead.cli_json("grants", "list")
    assert [(g["scope"], g["session"], g["principal"]) for g in grants] == [("session", session, "uid:0")]
    bys = [d["by"] for d in audit_kinds(bulkhead, "flow_decision")]
    assert bys == ["approver uid:0 (session)", f"grant {grants[0]['id']} (session)", "no approver"]


def test_always_grant_survives_restart_until_revoked(hub, repos):
    bulkhead = hub(repo_manifests(*repos, destructive=False))
    with open_channel(bulkhead.socket) as channel:
        stub = agent(channel)
        with Approver(bulkhead) as approver, ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(exfiltration, stub, str(uuid.uuid4()), f"Copied: {MARKER}")
            request = approver.next_event("request")
            assert request["rule"] == "verbatim"
            code, out, err = bulkhead.cli("approve", request["id"], "--always")
            assert code == 0, err
            assert "bulkhead grants revoke" in out
            assert "opened pull request" in waiting.result(timeout=EVENT_TIMEOUT).text

    grants = bulkhead.cli_json("grants", "list")
    assert [(g["scope"], g["principal"], g["source_app"], g["target_app"], g["tool"]) for g in grants] == [
        ("always", "uid:0", "repo_private", "repo_public", "create_pr")
    ]
    grant = grants[0]["id"]
    grants_file = bulkhead.state_dir / "grants.json"
    assert grants_file.stat().st_mode & 0o777 == 0o600

    bulkhead.restart()
    with open_channel(bulkhead.socket) as channel:
        allowed = exfiltration(agent(channel), str(uuid.uuid4()), f"Copied: {MARKER}")
    assert "opened pull request" in allowed.text
    assert audit_kinds(bulkhead, "flow_decision")[-1]["by"] == f"grant {grant} (always)"
    code, out, err = bulkhead.cli("grants", "list")
    assert code == 0, err
    assert grant in out
    assert "repo_private -> repo_public/create_pr" in out

    code, out, err = bulkhead.cli("grants", "revoke", grant)
    assert code == 0, err
    assert out.startswith(f"revoked grant {grant}: always")
    assert bulkhead.cli_json("grants", "list") == []
    with open_channel(bulkhead.socket) as channel:
        with pytest.raises(grpc.RpcError) as denied:
            exfiltration(agent(channel), str(uuid.uuid4()), f"Copied: {MARKER}")
    assert "no approver is attached" in denied.value.details()
    revokes = audit_kinds(bulkhead, "revoke")
    assert [(r["grant"], r["by"]) for r in revokes] == [(grant, "uid:0")]
    code, _, err = bulkhead.cli("audit", "verify", "--state", str(bulkhead.state_dir))
    assert code == 0, err


def test_always_rejected_for_destructive_tool(hub, repos):
    bulkhead = hub(repo_manifests(*repos))
    with open_channel(bulkhead.socket) as channel:
        stub = agent(channel)
        with Approver(bulkhead) as approver, ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(exfiltration, stub, str(uuid.uuid4()), f"Copied: {MARKER}")
            request = approver.next_event("request")
            code, _, err = bulkhead.cli("approve", request["id"], "--always")
            assert code == 1
            assert f"\"always\" is not allowed for repo_public/create_pr because the tool is destructive" in err
            assert f"approve request {request['id']} with --once or --session instead" in err
            assert pending_approvals(bulkhead) == 1, "the request stays pending"

            code, _, err = bulkhead.cli("approve", request["id"], "--once")
            assert code == 0, err
            assert "opened pull request" in waiting.result(timeout=EVENT_TIMEOUT).text
    assert bulkhead.cli_json("grants", "list") == []
    assert not (bulkhead.state_dir / "grants.json").exists()


def test_always_grant_of_one_uid_not_another(hub, repos):
    bulkhead = hub(repo_manifests(*repos, destructive=False))
    as_nobody = nobody_client(bulkhead)
    with open_channel(bulkhead.socket) as channel:
        stub = agent(channel)
        with Approver(bulkhead) as approver, ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(exfiltration, stub, str(uuid.uuid4()), f"Copied: {MARKER}")
            request = approver.next_event("request")
            code, _, err = bulkhead.cli("approve", request["id"], "--always")
            assert code == 0, err
            waiting.result(timeout=EVENT_TIMEOUT)
    grant = bulkhead.cli_json("grants", "list")[0]["id"]

    read = as_nobody("call", "repo_private", "get_file", "--session", "s", "--args", '{"path": "secrets.txt"}')
    assert read.returncode == 0, read.stderr
    copied = json.dumps({"title": "Sync", "body": f"Copied: {MARKER}"})
    denied = as_nobody("call", "repo_public", "create_pr", "--session", "s", "--args", copied)
    assert denied.returncode == 1
    assert "no approver is attached" in denied.stderr

    listed = as_nobody("--json", "grants", "list")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    revoked = as_nobody("grants", "revoke", grant)
    assert revoked.returncode == 1
    assert f"uid:{NOBODY} may not decide requests of uid:0" in revoked.stderr
    assert [g["id"] for g in bulkhead.cli_json("grants", "list")] == [grant]

    decisions = audit_kinds(bulkhead, "flow_decision")
    assert [(d["principal"], d["decision"]) for d in decisions] == [("uid:0", "allow"), (f"uid:{NOBODY}", "deny")]


def test_unanswered_request_times_out(hub, repos):
    bulkhead = hub(repo_manifests(*repos), start=False)
    append_config(bulkhead, '[flow]\napproval_timeout = "1s"\n')
    bulkhead.start()
    with open_channel(bulkhead.socket) as channel, Approver(bulkhead) as approver:
        with pytest.raises(grpc.RpcError) as denied:
            exfiltration(agent(channel), str(uuid.uuid4()), f"Copied: {MARKER}")
        request = approver.next_event("request")
        settled = approver.next_event("settled")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"no approver decided request {request['id']} within 1s, so it timed out" in denied.value.details()
    assert settled["outcome"] == "timed out"
    assert [t["request"] for t in audit_kinds(bulkhead, "approval_timeout")] == [request["id"]]
    assert audit_kinds(bulkhead, "flow_decision")[-1]["by"] == "timed out"


def test_interactive_approvals_read_stdin(hub, repos):
    bulkhead = hub(repo_manifests(*repos))
    with open_channel(bulkhead.socket) as channel:
        stub = agent(channel)
        approver = Approver(bulkhead, json_lines=False)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                waiting = pool.submit(exfiltration, stub, str(uuid.uuid4()), f"Copied: {MARKER}")
                header = approver.next_line(approver.stdout, lambda line: line.startswith("request "))
                flow = approver.next_line(approver.stdout, lambda line: line.strip().startswith("flow:"))
                arguments = approver.next_line(approver.stdout, lambda line: line.strip().startswith("arguments:"))
                choices = approver.next_line(approver.stdout, lambda line: line.startswith("decide:"))
                assert "from uid:0, session " in header
                assert flow.split() == ["flow:", "repo_private", "->", "repo_public/create_pr", "(destructive)"]
                assert MARKER in arguments
                assert choices == "decide: [o]nce, [s]ession, [d]eny"

                approver.process.stdin.write("maybe\n")
                approver.process.stdin.flush()
                approver.next_line(approver.stderr, lambda line: line.startswith('invalid choice "maybe"'))
                approver.process.stdin.write("o\n")
                approver.process.stdin.flush()
                decided = approver.next_line(approver.stdout, lambda line: line.startswith("approved request"))
                assert decided.endswith(" once")
                assert "opened pull request" in waiting.result(timeout=EVENT_TIMEOUT).text
            approver.process.stdin.close()
            assert approver.process.wait(timeout=10) == 0
        finally:
            approver.stop()


def test_corrupt_grants_file_stops_hub(hub):
    bulkhead = hub(start=False)
    bulkhead.state_dir.mkdir(mode=0o700)
    (bulkhead.state_dir / "grants.json").write_text('{"version": 1, "grants": [')
    bulkhead.start(wait_for_socket=False)
    assert bulkhead.process.wait(timeout=20) == 1
    log = bulkhead.log_path.read_text()
    assert "grants.json is invalid" in log
    assert "move it aside to start without stored grants" in log
