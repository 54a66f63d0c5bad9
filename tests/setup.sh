#!/usr/bin/env bash
# Installs what the end-to-end suite needs into these folders under build/:
#   build/venv           pytest and the grpcio packages, for the test runner
#   build/pygen          Python gRPC stubs generated from proto/
#   build/apps/mcp-time  the MCP server mcp-server-time from PyPI, in a venv of its own
#   build/apps/mcp-fs    the MCP server @modelcontextprotocol/server-filesystem from npm
#   build/debian-bookworm  a minimal Debian root with systemd, made by debootstrap
# and, when missing, Debian's systemd, debootstrap and systemd-container packages.
# Each step leaves a stamp file and is skipped while the stamp is newer than its inputs, so a
# second run installs nothing. It uses python3 and npm from PATH and works from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
TEST_PACKAGES=(pytest grpcio grpcio-tools grpcio-health-checking grpcio-reflection)
# The third-party apps are pinned so that their tool names and output formats stay what the tests expect.
TIME_PACKAGE="mcp-server-time==2026.10.19"
FS_PACKAGE="@modelcontextprotocol/server-filesystem@2026.8.31"

say() { echo "setup: $*"; }

# Returns success when STAMP exists and is newer than every given input path.
fresh() {
    local stamp="$1"; shift
    [[ -f "$stamp" ]] || return 1
    local newer
    newer="$(find "$@" -newer "$stamp" -print -quit 2>/dev/null)"
    [[ -z "$newer" ]]
}

make_venv() {
    local dir="$1"; shift
    say "creating a Python venv at ${dir#"$ROOT"/} with $*"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

setup_test_venv() {
    local stamp="$BUILD/venv/.installed"
    fresh "$stamp" "$ROOT/tests/setup.sh" && return 0
    make_venv "$BUILD/venv" "${TEST_PACKAGES[@]}"
    touch "$stamp"
}

generate_stubs() {
    local stamp="$BUILD/pygen/.generated"
    fresh "$stamp" "$ROOT/proto" "$BUILD/venv/.installed" && return 0
    say "generating Python gRPC stubs from proto/ into build/pygen"
    rm -rf "$BUILD/pygen"
    mkdir -p "$BUILD/pygen"
    (cd "$ROOT/proto" && "$BUILD/venv/bin/python" -m grpc_tools.protoc -I . \
        --python_out="$BUILD/pygen" --grpc_python_out="$BUILD/pygen" bulkhead/v1/*.proto)
    touch "$stamp"
}

setup_time_app() {
    local stamp="$BUILD/apps/mcp-time/.installed"
    fresh "$stamp" "$ROOT/tests/setup.sh" && return 0
    make_venv "$BUILD/apps/mcp-time" "$TIME_PACKAGE"
    touch "$stamp"
}

setup_fs_app() {
    local dir="$BUILD/apps/mcp-fs"
    local stamp="$dir/.installed"
    fresh "$stamp" "$ROOT/tests/setup.sh" && return 0
    say "installing $FS_PACKAGE with npm into ${dir#"$ROOT"/}"
    rm -rf "$dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$FS_PACKAGE" >/dev/null
    touch "$stamp"
}

mkdir -p "$BUILD/apps"
# systemd-analyze checks the unit files. Debian ships it in the systemd package.
setup_systemd_tools() {
    command -v systemd-analyze >/dev/null && return 0
    say "installing the systemd package for systemd-analyze"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }
}

# A minimal Debian root with systemd, for tests/test_systemd.py to boot with systemd-nspawn. The
# stamp inside it marks a finished debootstrap, so reruns reuse it.
setup_debian_root() {
    local root="$BUILD/debian-bookworm"
    [[ -f "$root/.bulkhead-stamp" ]] && return 0
    if ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null; then
        say "installing debootstrap and systemd-container"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap systemd-container >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap systemd-container >/dev/null; }
    fi
    say "building a minimal Debian bookworm root with systemd at ${root#"$ROOT"/}"
    rm -rf "$root.tmp" "$root"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$root.tmp" >/dev/null
    touch "$root.tmp/.bulkhead-stamp"
    mv "$root.tmp" "$root"
}

setup_test_venv
setup_systemd_tools
setup_debian_root
generate_stubs
setup_time_app
setup_fs_app
