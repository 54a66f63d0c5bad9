"""The flow guard and the broker on one MCP server registered twice: repo_private, whose data is
confidential, and repo_public, whose create_pr is destructive. A public issue tells the reader to
copy the private file into a pull request, and the hub must not let that flow through unasked."""

import uuid

import grpc
import pytest

from grpc_client import agent, open_channel
from repos import MARKER, NOBODY, audit_kinds, call, exfiltration, nobody_client, repo_manifests, repos  # noqa: F401


def test_confidential_flow_is_denied_without_approver(hub, repos):
    bulkhead = hub(repo_manifests(*repos))
    session = str(uuid.uuid4())
    with open_channel(bulkhead.socket) as channel:
        stub = agent(channel)
        with pytest.raises(grpc.RpcError) as denied:
            exfiltration(stub, session, f"Copied: {MARKER}")
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        message = denied.value.details()
        assert "repo_private" in message
        assert "repo_public/create_pr" in message
        assert "no approver" in message

        # A session that read nothing confidential may open a pull request.
        other = call(stub, str(uuid.uuid4()), "repo_public", "create_pr", {"title": "Typo", "body": "Fix recieve."})
        assert "opened pull request" in other.text

    decisions = audit_kinds(bulkhead, "flow_decision")
    assert len(decisions) == 1, decisions
    assert decisions[0]["decision"] == "deny"
    assert decisions[0]["source"] == "repo_private"
    assert decisions[0]["target"] == "repo_public"
    assert decisions[0]["tool"] == "create_pr"
    assert decisions[0]["rule"] == "confidential"
    assert decisions[0]["principal"] == "uid:0"
    assert not (repos[1] / "pulls.jsonl").exists() or MARKER not in (repos[1] / "pulls.jsonl").read_text()
    code, _, err = bulkhead.cli("audit", "verify", "--state", str(bulkhead.state_dir))
    assert code == 0, err


def test_static_rule_allows_the_flow(hub, repos):
    bulkhead = hub(repo_manifests(*repos), start=False)
    with open(bulkhead.config_path, "a") as config:
        config.write('\n[[flow.allow]]\nsource = "repo_private"\ntarget = "repo_public"\ntool = "create_pr"\n')
    bulkhead.start()
    with open_channel(bulkhead.socket) as channel:
        result = exfiltration(agent(channel), str(uuid.uuid4()), f"Copied: {MARKER}")
    assert "opened pull request" in result.text
    decisions = audit_kinds(bulkhead, "flow_decision")
    assert [(d["decision"], d["by"]) for d in decisions] == [("allow", "flow.allow[0]")]


def test_verbatim_rule_alone_guards_copied_text(hub, repos):
    bulkhead = hub(repo_manifests(*repos), start=False)
    with open(bulkhead.config_path, "a") as config:
        config.write("\n[flow]\nconfidential_rule = false\n")
    bulkhead.start()
    with open_channel(bulkhead.socket) as channel:
        stub = agent(channel)
        session = str(uuid.uuid4())
        # Without copied text the flow needs no decision once the confidential rule is off.
        clean = exfiltration(stub, session, "Nothing copied here.")
        assert "opened pull request" in clean.text
        with pytest.raises(grpc.RpcError) as denied:
            call(stub, session, "repo_public", "create_pr", {"title": "Sync", "body": f"key:\n  {MARKER}"})
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    decisions = audit_kinds(bulkhead, "flow_decision")
    assert [d["rule"] for d in decisions] == ["verbatim"]


def test_rule_for_one_uid_does_not_apply_to_another(hub, repos):
    bulkhead = hub(repo_manifests(*repos), start=False)
    with open(bulkhead.config_path, "a") as config:
        config.write('\n[[flow.allow]]\nprincipal = "uid:0"\nsource = "repo_private"\ntarget = "repo_public"\n')
    bulkhead.start()
    as_nobody = nobody_client(bulkhead)

    with open_channel(bulkhead.socket) as channel:
        allowed = exfiltration(agent(channel), str(uuid.uuid4()), "copied")
    assert "opened pull request" in allowed.text

    read = as_nobody("call", "repo_private", "get_file", "--session", "s", "--args", '{"path": "secrets.txt"}')
    assert read.returncode == 0, read.stderr
    assert MARKER in read.stdout
    denied = as_nobody("call", "repo_public", "create_pr", "--session", "s", "--args", '{"title": "Sync", "body": "copied"}')
    assert denied.returncode == 1
    assert "denied" in denied.stderr
    assert "repo_private" in denied.stderr

    decisions = audit_kinds(bulkhead, "flow_decision")
    assert [(d["principal"], d["decision"]) for d in decisions] == [("uid:0", "allow"), (f"uid:{NOBODY}", "deny")]
