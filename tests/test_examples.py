"""Every tool of the example apps notes, calendar and mail, called through the hub with the CLI."""

import json
import re
from datetime import datetime, timezone

import manifests

EXAMPLES = ("notes", "calendar", "mail")
RFC3339_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def examples_hub(hub):
    return hub({name: manifests.example(name) for name in EXAMPLES})


def assert_recent(created_at: str) -> None:
    created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    age = (datetime.now(timezone.utc) - created).total_seconds()
    assert -5 < age < 60, f"created_at {created_at} is {age:.0f} s from now"


def test_tool_catalog(hub):
    bulkhead = examples_hub(hub)

    tools = {(tool["app"], tool["name"]): tool for tool in bulkhead.cli_json("tools")}

    assert set(tools) == {
        ("notes", "add_note"),
        ("notes", "list_notes"),
        ("notes", "search_notes"),
        ("calendar", "list_events"),
        ("calendar", "create_event"),
        ("mail", "search_mail"),
        ("mail", "read_mail"),
        ("mail", "send_mail"),
    }
    destructive = sorted(name for (app, name), tool in tools.items() if tool["destructive"])
    assert destructive == ["send_mail"]
    for tool in tools.values():
        assert tool["description"], f"{tool['name']} has no description"
        assert tool["input_schema"]["type"] == "object"


def test_notes_add_list_search(hub):
    bulkhead = examples_hub(hub)

    first = bulkhead.call_json("notes", "add_note", {"title": "Groceries", "body": "Milk, EGGS and bread"})
    second = bulkhead.call_json("notes", "add_note", {"title": "Trip", "body": "Book the train to Lyon"})

    assert first["content"] == [{"type": "text", "text": "added note 1: Groceries"}]
    assert second["content"] == [{"type": "text", "text": "added note 2: Trip"}]
    assert first["structuredContent"]["id"] == 1
    assert second["structuredContent"]["id"] == 2
    created = [first["structuredContent"]["created_at"], second["structuredContent"]["created_at"]]
    for stamp in created:
        assert re.fullmatch(RFC3339_UTC, stamp)
        assert_recent(stamp)

    listed = bulkhead.call_json("notes", "list_notes")
    assert listed["content"][0]["text"] == f"1. Groceries (created {created[0]})\n2. Trip (created {created[1]})"
    assert listed["structuredContent"] == {
        "notes": [
            {"id": 1, "title": "Groceries", "created_at": created[0]},
            {"id": 2, "title": "Trip", "created_at": created[1]},
        ]
    }

    found = bulkhead.call_json("notes", "search_notes", {"query": "eggs"})
    assert found["content"][0]["text"] == f"1. Groceries (created {created[0]})\nMilk, EGGS and bread"
    assert [note["id"] for note in found["structuredContent"]["notes"]] == [1]
    assert bulkhead.call_text("notes", "search_notes", {"query": "TRAIN"}).startswith("2. Trip ")
    assert bulkhead.call_text("notes", "search_notes", {"query": "opera"}) == 'no notes match "opera"'


def test_notes_persist_across_restart(hub):
    bulkhead = hub({"notes": manifests.example("notes")})
    bulkhead.call_text("notes", "add_note", {"title": "Keep me", "body": "across restarts"})
    [log] = list(bulkhead.state_dir.rglob("notes.jsonl"))
    assert json.loads(log.read_text().splitlines()[0])["title"] == "Keep me"

    bulkhead.restart()

    listed = bulkhead.call_json("notes", "list_notes")
    assert [note["title"] for note in listed["structuredContent"]["notes"]] == ["Keep me"]
    assert bulkhead.call_text("notes", "add_note", {"title": "Next", "body": "x"}) == "added note 2: Next"


def test_calendar_create_and_list(hub):
    bulkhead = examples_hub(hub)
    assert bulkhead.call_text("calendar", "list_events") == "no events"

    created = bulkhead.call_json(
        "calendar",
        "create_event",
        {"title": "Design review", "start": "2030-01-15 10:00", "duration_minutes": 30, "attendees": ["alice@example.org"]},
    )
    later = bulkhead.call_json("calendar", "create_event", {"title": "Retro", "start": "2030-01-16T09:00:00+02:00"})

    review = "1: Design review, 2030-01-15T10:00:00Z to 2030-01-15T10:30:00Z (30 minutes) with alice@example.org"
    retro = "2: Retro, 2030-01-16T09:00:00+02:00 to 2030-01-16T10:00:00+02:00 (60 minutes)"
    assert created["content"][0]["text"] == f"created event {review}"
    assert later["content"][0]["text"] == f"created event {retro}"
    assert created["structuredContent"] == {
        "id": 1,
        "title": "Design review",
        "start": "2030-01-15T10:00:00Z",
        "end": "2030-01-15T10:30:00Z",
        "duration_minutes": 30,
        "attendees": ["alice@example.org"],
    }
    assert bulkhead.call_text("calendar", "list_events") == f"{review}\n{retro}"
    assert bulkhead.call_text("calendar", "list_events", {"from": "2030-01-16", "to": "2030-01-16"}) == retro
    assert bulkhead.call_text("calendar", "list_events", {"from": "2030-02-01"}) == "no events"


def test_calendar_bad_date_is_tool_error(hub):
    bulkhead = examples_hub(hub)

    code, out, err = bulkhead.cli("call", "calendar", "create_event", "--args", json.dumps({"title": "x", "start": "tomorrow"}))

    assert code == 1
    assert out == ""
    assert err.startswith("error: tool calendar/create_event failed: invalid start \"tomorrow\"")
    assert bulkhead.call_text("calendar", "list_events") == "no events"


def test_mail_search_read_send(hub):
    bulkhead = examples_hub(hub)

    found = bulkhead.call_json("mail", "search_mail", {"query": "INVOICE"})
    assert found["content"][0]["text"] == "m1, 2025-05-02T08:15:00Z, from billing@example.com: Invoice INV-2025-0412 for April"
    assert found["structuredContent"]["messages"] == [
        {
            "id": "m1",
            "from": "billing@example.com",
            "subject": "Invoice INV-2025-0412 for April",
            "date": "2025-05-02T08:15:00Z",
        }
    ]
    assert bulkhead.call_text("mail", "search_mail", {"query": "zeppelin"}) == 'no messages match "zeppelin"'

    message = bulkhead.call_json("mail", "read_mail", {"id": "m2"})
    text = message["content"][0]["text"]
    assert text.startswith(
        "From: alice@example.org\nTo: sam@example.net\nDate: 2025-05-05T14:02:00Z\n"
        "Subject: Meeting request: Q2 roadmap review\n\nHi Sam,\n"
    )
    assert text.endswith("\nThanks,\nAlice")
    assert message["structuredContent"]["body"] == text.split("\n\n", 1)[1]

    sent = bulkhead.call_json("mail", "send_mail", {"to": "alice@example.org", "subject": "Re: Q2 roadmap", "body": "Thursday works."})
    assert sent["content"] == [{"type": "text", "text": "queued message out-1 to alice@example.org"}]

    [outbox] = list(bulkhead.state_dir.rglob("outbox.jsonl"))
    assert outbox.parent == bulkhead.state_dir / "apps" / "mail"
    [line] = outbox.read_text().splitlines()
    queued = json.loads(line)
    assert queued["id"] == "out-1"
    assert queued["from"] == "sam@example.net"
    assert queued["to"] == "alice@example.org"
    assert queued["subject"] == "Re: Q2 roadmap"
    assert queued["body"] == "Thursday works."
    assert_recent(queued["queued_at"])


def test_mail_unknown_id_is_tool_error(hub):
    bulkhead = examples_hub(hub)

    code, out, err = bulkhead.cli("call", "mail", "read_mail", "--args", '{"id": "nope"}')

    assert code == 1
    assert out == ""
    assert err.startswith('error: tool mail/read_mail failed: no message with id "nope"')
