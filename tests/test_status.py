"""`bulkhead status` shows the version, uptime, counts, pending approvals and each spoke."""

import manifests


def test_status_lists_spokes(hub):
    bulkhead = hub({"notes": manifests.example("notes")})
    bulkhead.warm("notes")

    code, out, err = bulkhead.cli("status")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("bulkheadd ")
    assert "1 app, 1 spoke, 0 pending approvals" in lines[0]
    assert lines[1].split()[:2] == ["APP", "STATE"]
    assert lines[2].split()[:2] == ["notes", "ready"]

    status = bulkhead.cli_json("status")
    assert status["pending_approvals"] == 0
    assert [(spoke["app"], spoke["state"]) for spoke in status["spoke_list"]] == [("notes", "ready")]
    assert status["spoke_list"][0]["memory_bytes"] > 0
