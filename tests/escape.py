"""Helpers of the escape suite: calling the hostile app and keeping the table of outcomes.

Every tool of bulkhead-app-hostile returns {"attempt", "result", "detail"}, where result is "ok", an
errno name such as "EPERM", or how a helper process ended, such as "killed by SIGSYS".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from harness import Hub


@dataclass(frozen=True)
class Expect:
    """An expected outcome: a description for the table and the set of accepted results.

    With `accepted` empty, any result but "ok" passes.
    """

    text: str
    accepted: frozenset[str] = frozenset()

    def matches(self, result: str) -> bool:
        if not self.accepted:
            return result != "ok"
        return result in self.accepted


def fails() -> Expect:
    return Expect("fails")


def one_of(*results: str) -> Expect:
    return Expect(" or ".join(results), frozenset(results))


def succeeds() -> Expect:
    return Expect("ok", frozenset({"ok"}))


def call_attempt(hub: Hub, tool: str, arguments: dict | None = None, timeout: float = 90.0) -> dict:
    """Call one hostile tool and return its outcome, or a result "call failed" with the CLI's error."""
    code, out, err = hub.cli("--json", "call", "hostile", tool, "--args", json.dumps(arguments or {}), timeout=timeout)
    if code != 0:
        return {"attempt": tool, "result": "call failed", "detail": err.strip()}
    result = json.loads(out)
    structured = result.get("structuredContent")
    if not isinstance(structured, dict):
        return {"attempt": tool, "result": "no outcome", "detail": json.dumps(result)}
    return structured


@dataclass
class Table:
    """Rows of attempt, expected and observed, printed at the end with a pass and fail count."""

    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def record(self, attempt: str, expected: str, observed: str, passed: bool) -> bool:
        self.rows.append((attempt, expected, observed, passed))
        return passed

    def expect(self, hub: Hub, label: str, tool: str, arguments: dict | None, expected: Expect) -> dict:
        """Run one attempt, record whether its result matches, and return the outcome."""
        outcome = call_attempt(hub, tool, arguments)
        observed = outcome["result"]
        detail = outcome.get("detail", "")
        if detail and observed != "ok":
            observed = f"{observed} ({shorten(detail)})"
        self.record(label, expected.text, observed, expected.matches(outcome["result"]))
        return outcome

    def failed(self) -> int:
        return sum(1 for row in self.rows if not row[3])

    def render(self) -> str:
        widths = [max(len(row[index]) for row in self.rows + [("attempt", "expected", "observed", True)]) for index in range(2)]
        lines = [f"{'attempt':<{widths[0]}}  {'expected':<{widths[1]}}  observed"]
        for attempt, expected, observed, passed in self.rows:
            mark = "" if passed else "   <-- FAILED"
            lines.append(f"{attempt:<{widths[0]}}  {expected:<{widths[1]}}  {shorten(observed, 100)}{mark}")
        passed_count = len(self.rows) - self.failed()
        lines.append(f"{passed_count} passed, {self.failed()} failed")
        return "\n".join(lines)


def shorten(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

