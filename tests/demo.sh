#!/usr/bin/env bash
# A first look at bulkhead: start the hub on the example apps in config/apps.d, call one tool of
# each app through the CLI, ask one natural-language query that spans the calendar and notes apps,
# show the spokes that are running, and stop the hub. The query's planner is a scripted LLM on
# 127.0.0.1 (tests/demo_llm.py). The calendar-to-notes flow it needs waits for a live approver,
# which a script decides (tests/demo_approver.py) in the place of a person at `bulkhead approvals`.
# Run it as root (`make demo`), because the hub creates namespaces and cgroups for each spoke.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release"
WORK="$(mktemp -d /tmp/bulkhead-demo.XXXXXX)"
chmod 0755 "$WORK"
SOCKET="$WORK/hub.sock"
HUB_PID=""
LLM_PID=""
APPROVER_PID=""

cleanup() {
    if [[ -n "$APPROVER_PID" ]] && kill -0 "$APPROVER_PID" 2>/dev/null; then
        kill -TERM "$APPROVER_PID"
        wait "$APPROVER_PID" || true
    fi
    if [[ -n "$LLM_PID" ]] && kill -0 "$LLM_PID" 2>/dev/null; then
        kill -TERM "$LLM_PID"
        wait "$LLM_PID" || true
    fi
    if [[ -n "$HUB_PID" ]] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill -TERM "$HUB_PID"
        wait "$HUB_PID" || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Print a command as it would be typed, quoting arguments that need it, then run it.
show() {
    local typed="" arg
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./-]+$ ]]; then
            typed+=" $arg"
        else
            typed+=" '$arg'"
        fi
    done
    echo
    echo "\$${typed}"
    "$@"
}

bulkhead() { "$BIN/bulkhead" --socket "$SOCKET" "$@"; }

echo "Starting the scripted planner (tests/demo_llm.py)"
python3 "$ROOT/tests/demo_llm.py" "$WORK/llm-url" &
LLM_PID=$!
for _ in $(seq 50); do
    [[ -s "$WORK/llm-url" ]] && break
    sleep 0.1
done
if [[ ! -s "$WORK/llm-url" ]]; then
    echo "the scripted planner did not start within 5 s" >&2
    exit 1
fi

cat >"$WORK/hub.toml" <<CONFIG
[server]
socket = "$SOCKET"

[paths]
apps = "$ROOT/config/apps.d"
state = "$WORK/state"

[llm]
backend = "openai"
base_url = "$(cat "$WORK/llm-url")"
model = "scripted"
CONFIG

echo "Starting bulkheadd with the example apps of config/apps.d (log: $WORK/hub.log)"
"$BIN/bulkheadd" --config "$WORK/hub.toml" 2>"$WORK/hub.log" &
HUB_PID=$!

for _ in $(seq 100); do
    [[ -S "$SOCKET" ]] && break
    if ! kill -0 "$HUB_PID" 2>/dev/null; then
        echo "bulkheadd exited during start:" >&2
        cat "$WORK/hub.log" >&2
        exit 1
    fi
    sleep 0.2
done
if [[ ! -S "$SOCKET" ]]; then
    echo "bulkheadd did not create $SOCKET within 20 s; see $WORK/hub.log" >&2
    exit 1
fi

show bulkhead apps list
show bulkhead call notes add_note --args '{"title": "demo", "body": "Written through the bulkhead hub."}'
show bulkhead call notes search_notes --args '{"query": "hub"}'
show bulkhead call calendar create_event --args '{"title": "Demo review", "start": "2030-01-15 10:00", "duration_minutes": 30}'
show bulkhead call mail search_mail --args '{"query": "invoice"}'
echo
echo "Starting the scripted approver (tests/demo_approver.py)"
python3 "$ROOT/tests/demo_approver.py" "$BIN/bulkhead" "$WORK/approver-ready" "$SOCKET" &
APPROVER_PID=$!
for _ in $(seq 50); do
    [[ -e "$WORK/approver-ready" ]] && break
    sleep 0.1
done
if [[ ! -e "$WORK/approver-ready" ]]; then
    echo "the scripted approver did not attach within 5 s" >&2
    exit 1
fi
# The query moves calendar data into a note, so the note waits for the approver's decision.
show bulkhead query "Save my calendar events in a note"
show bulkhead call notes search_notes --args '{"query": "Demo review"}'
show bulkhead spokes

kill -TERM "$APPROVER_PID"
wait "$APPROVER_PID"
APPROVER_PID=""

echo
echo "Stopping bulkheadd"
kill -TERM "$HUB_PID"
wait "$HUB_PID"
HUB_PID=""
echo "Done."
