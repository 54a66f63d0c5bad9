"""Fixtures of the end-to-end suite: the build check and the `hub` factory.

The suite drives the release binaries in target/release and the third-party apps that
tests/setup.sh installs under build/. bulkheadd needs root for its namespaces and cgroups, so the
hub tests skip for other users, except under CI (CI=true), where nothing may skip.
"""

from __future__ import annotations

import os
import sys

import pytest

from harness import BUILD, RELEASE, Hub, missing_binaries

# The Python gRPC stubs that tests/setup.sh generates from proto/.
sys.path.insert(0, str(BUILD / "pygen"))


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.fixture(scope="session", autouse=True)
def built_binaries():
    missing = missing_binaries()
    if missing:
        pytest.fail(f"missing in {RELEASE}: {', '.join(missing)}; run make build", pytrace=False)


@pytest.fixture(scope="session")
def root_privileges():
    if os.geteuid() == 0:
        return
    reason = "bulkheadd needs root to create spoke namespaces and cgroups; run the suite as root"
    if in_ci():
        pytest.fail(reason, pytrace=False)
    print(f"skipping: {reason}")
    pytest.skip(reason)


@pytest.fixture
def hub(request, root_privileges):
    """Return a factory that starts bulkheadd with the manifests given, as {name: TOML text}.

    With start=False the factory only prepares the hub's directory, and the test calls start().

    Each hub gets a fresh temporary directory. On teardown every hub gets SIGTERM and must exit 0,
    and no process or cgroup of its spokes (launcher, spoke runtime or app) may be left.
    """
    hubs: list[Hub] = []
    request.node.bulkhead_hubs = hubs

    def create(manifests: dict[str, str] | None = None, env: dict[str, str] | None = None, start: bool = True) -> Hub:
        instance = Hub(manifests or {}, env=env)
        hubs.append(instance)
        if start:
            instance.start()
        return instance

    yield create

    failures = []
    for instance in hubs:
        try:
            instance.stop()
            leftovers = instance.leftover_processes()
            if leftovers:
                failures.append(f"processes left after bulkheadd stopped: {leftovers}\n{instance.log_tail()}")
            cgroups = instance.leftover_cgroups()
            if cgroups:
                failures.append(f"spoke cgroups left after bulkheadd stopped: {cgroups}\n{instance.log_tail()}")
        except AssertionError as error:
            failures.append(str(error))
        finally:
            instance.cleanup()
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the log tail of every hub a failed test started to its report."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for index, instance in enumerate(getattr(item, "bulkhead_hubs", [])):
        report.sections.append((f"bulkheadd log {index}", instance.log_tail()))
