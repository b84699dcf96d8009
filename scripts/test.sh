#!/usr/bin/env bash
# Install every test dependency (Debian packages and Python packages) and run
# the whole test suite: lint, type checks, then pytest with the "ci"
# Hypothesis profile.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Programs the tests drive as independent peers and checkers.
APT_PACKAGES=(libwbxml2-utils dbus python3-venv obexftp syncevolution syncevolution-http python3-twisted gcc libc6-dev systemd)
if command -v apt-get >/dev/null 2>&1; then
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

.venv/bin/ruff check syncmld tests benchmarks examples
.venv/bin/mypy
HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}" .venv/bin/python -m pytest "$@"
