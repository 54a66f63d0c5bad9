"""`make install` honours PREFIX and DESTDIR, keeps an existing hub.toml, and installs units that
systemd-analyze verify accepts."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import REPO, BINARIES

# The hostile app exists only for the escape suite, so `make install` leaves it out.
INSTALLED_BINARIES = [name for name in BINARIES if name != "bulkhead-app-hostile"]


@pytest.fixture
def destdir():
    path = Path(tempfile.mkdtemp(prefix="bh-install-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_install(*variables: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["make", "-s", "-C", str(REPO), "install", *variables],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"make install {' '.join(variables)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_install_into_destdir(destdir):
    make_install(f"DESTDIR={destdir}", "PREFIX=/usr")

    for name in INSTALLED_BINARIES:
        binary = destdir / "usr/bin" / name
        assert binary.is_file(), f"missing {binary}"
        assert binary.stat().st_mode & 0o777 == 0o755
    service = (destdir / "usr/lib/systemd/system/bulkhead.service").read_text()
    assert "ExecStart=/usr/bin/bulkheadd --config /etc/bulkhead/hub.toml" in service
    assert "@BINDIR@" not in service
    assert (destdir / "usr/lib/systemd/system/bulkhead.socket").is_file()
    assert (destdir / "etc/bulkhead/hub.toml").read_text() == (REPO / "config/hub.toml").read_text()
    assert list((destdir / "etc/bulkhead/apps.d").iterdir()) == []
    assert (destdir / "usr/share/bulkhead/examples/apps.d/notes.toml").is_file()


def test_install_keeps_existing_config(destdir):
    make_install(f"DESTDIR={destdir}")
    config = destdir / "etc/bulkhead/hub.toml"
    config.write_text("# edited by the operator\n")
    (destdir / "etc/bulkhead/apps.d/mine.toml").write_text("name = \"mine\"\n")

    done = make_install(f"DESTDIR={destdir}")
    assert config.read_text() == "# edited by the operator\n"
    assert "keeping the existing" in done.stdout
    assert (destdir / "etc/bulkhead/apps.d/mine.toml").is_file()
    assert (destdir / "usr/local/bin/bulkheadd").is_file()


def test_default_config_matches_unit_directories():
    config = (REPO / "config/hub.toml").read_text()
    service = (REPO / "config/bulkhead.service").read_text()
    socket_unit = (REPO / "config/bulkhead.socket").read_text()
    # RuntimeDirectory, StateDirectory and ConfigurationDirectory are relative to /run, /var/lib
    # and /etc.
    assert "RuntimeDirectory=bulkhead\n" in service
    assert 'socket = "/run/bulkhead/hub.sock"' in config
    assert "ListenStream=/run/bulkhead/hub.sock" in socket_unit
    assert "StateDirectory=bulkhead\n" in service
    assert 'state = "/var/lib/bulkhead"' in config
    assert "ConfigurationDirectory=bulkhead\n" in service
    assert 'apps = "/etc/bulkhead/apps.d"' in config


def test_units_pass_systemd_analyze_verify(destdir):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing; tests/setup.sh installs the systemd package")
    # Installing without DESTDIR into a temporary prefix gives units whose ExecStart exists on
    # this host, which verify checks.
    make_install(f"PREFIX={destdir}/usr", f"SYSCONFDIR={destdir}/etc")
    units = [str(destdir / "usr/lib/systemd/system" / name) for name in ("bulkhead.service", "bulkhead.socket")]
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=120, check=False)
    own = [line for line in done.stderr.splitlines() if "bulkhead" in line]
    assert done.returncode == 0, f"systemd-analyze verify failed:\n{done.stdout}\n{done.stderr}"
    assert own == [], f"systemd-analyze verify warned about the units:\n{done.stderr}"
