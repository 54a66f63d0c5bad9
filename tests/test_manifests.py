"""Manifest problems, registration, reload on SIGHUP and removal, through the CLI."""

import signal

import manifests
from harness import wait_until

BAD_MANIFESTS = {
    # name: (manifest text, text that the problem must contain besides the file name)
    "broken": ('name = "broken"\ndescription = "unterminated\n', "line"),
    "typo": ('name = "typo"\ndescription = "A typo."\ncommnd = "bulkhead-app-notes"\n', "commnd"),
    "parsecs": (
        'name = "parsecs"\ndescription = "Too far."\ncommand = "bulkhead-app-notes"\n'
        '\n[limits]\nmemory = "12 parsecs"\n',
        "limits.memory",
    ),
}


def renamed(manifest: str, name: str) -> str:
    """Return an example manifest with its name line replaced."""
    lines = [f'name = "{name}"' if line.startswith("name =") else line for line in manifest.splitlines()]
    return "\n".join(lines) + "\n"


def app_names(listing: dict) -> list[str]:
    return sorted(app["name"] for app in listing["apps"])


def test_bad_manifests_listed_as_problems(hub):
    files = {name: text for name, (text, _) in BAD_MANIFESTS.items()}
    bulkhead = hub({"notes": manifests.example("notes"), **files})

    listing = bulkhead.cli_json("apps", "list")

    assert app_names(listing) == ["notes"]
    problems = {problem["path"]: problem["message"] for problem in listing["problems"]}
    assert len(problems) == len(BAD_MANIFESTS), problems
    for name, (_, expected) in BAD_MANIFESTS.items():
        path = str(bulkhead.apps_dir / f"{name}.toml")
        assert path in problems, f"no problem listed for {path}: {problems}"
        assert expected in problems[path]
    assert "12 parsecs" in problems[str(bulkhead.apps_dir / "parsecs.toml")]
    assert bulkhead.call_text("notes", "add_note", {"title": "still", "body": "works"}) == "added note 1: still"


def test_bad_manifests_in_human_listing(hub):
    bulkhead = hub({"notes": manifests.example("notes"), "typo": BAD_MANIFESTS["typo"][0]})

    code, out, err = bulkhead.cli("apps", "list")

    assert code == 0
    assert "notes" in out
    assert f"warning: {bulkhead.apps_dir / 'typo.toml'}: " in err
    assert "commnd" in err


def test_apps_add_rejects_bad_manifest(hub):
    bulkhead = hub({})
    for name, (text, expected) in BAD_MANIFESTS.items():
        path = bulkhead.root / f"{name}.toml"
        path.write_text(text)

        code, out, err = bulkhead.cli("apps", "add", str(path))

        assert code == 1, f"apps add {name}: exit {code}, stdout {out!r}"
        assert err.startswith("error: ")
        assert len(err.strip().splitlines()) == 1, err
        assert expected in err
    assert bulkhead.cli_json("apps", "list")["apps"] == []


def test_sighup_loads_new_manifest(hub):
    bulkhead = hub({"notes": manifests.example("notes")})
    assert app_names(bulkhead.cli_json("apps", "list")) == ["notes"]

    bulkhead.write_manifest("calendar", manifests.example("calendar"))
    bulkhead.process.send_signal(signal.SIGHUP)

    loaded = wait_until(lambda: app_names(bulkhead.cli_json("apps", "list")) == ["calendar", "notes"], 10.0, 0.2)
    assert loaded, f"calendar not listed 10 s after SIGHUP: {bulkhead.cli_json('apps', 'list')}"
    tools = {tool["name"] for tool in bulkhead.cli_json("tools", "calendar")}
    assert {"create_event", "list_events"} <= tools


def test_reload_command_drops_removed_file(hub):
    bulkhead = hub({"notes": manifests.example("notes"), "calendar": manifests.example("calendar")})

    (bulkhead.apps_dir / "calendar.toml").unlink()
    code, out, err = bulkhead.cli("reload")

    assert code == 0, err
    assert out.splitlines()[0] == "reloaded: 1 app"
    assert app_names(bulkhead.cli_json("apps", "list")) == ["notes"]


def test_apps_add_and_remove(hub):
    bulkhead = hub({"notes": manifests.example("notes")})
    path = bulkhead.root / "jotter.toml"
    path.write_text(renamed(manifests.example("notes"), "jotter"))

    code, out, err = bulkhead.cli("apps", "add", str(path))
    assert code == 0, err
    assert out.strip() == "registered app jotter"
    assert app_names(bulkhead.cli_json("apps", "list")) == ["jotter", "notes"]
    assert bulkhead.call_text("jotter", "add_note", {"title": "kept", "body": "apart"}) == "added note 1: kept"

    code, out, err = bulkhead.cli("apps", "remove", "jotter")
    assert code == 0, err
    assert out.strip() == "removed app jotter"
    assert app_names(bulkhead.cli_json("apps", "list")) == ["notes"]
    code, out, err = bulkhead.cli("call", "jotter", "list_notes")
    assert code == 1
    assert "not found" in err


def test_remove_file_app_is_rejected(hub):
    bulkhead = hub({"notes": manifests.example("notes")})

    code, _, err = bulkhead.cli("apps", "remove", "notes")

    assert code == 1
    assert err.startswith("error: ")
    assert app_names(bulkhead.cli_json("apps", "list")) == ["notes"]


def test_call_missing_app(hub):
    bulkhead = hub({"notes": manifests.example("notes")})

    code, out, err = bulkhead.cli("call", "nosuchapp", "add_note", "--args", "{}")

    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert "nosuchapp" in err
    assert "not found" in err
    assert len(err.strip().splitlines()) == 1


def test_call_missing_tool(hub):
    bulkhead = hub({"notes": manifests.example("notes")})

    code, out, err = bulkhead.cli("call", "notes", "nosuchtool", "--args", "{}")

    assert code == 1
    assert out == ""
    assert err.startswith('error: tool "nosuchtool" not found in app "notes"'), err
    assert "bulkhead tools notes" in err
    assert len(err.strip().splitlines()) == 1
