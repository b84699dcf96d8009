#!/usr/bin/env bash
# Install syncmld into .venv (once) and run it; arguments go to `syncmld`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        # Debian splits venv support out of python3.
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv
    fi
    python3 -m venv .venv
fi
[ -x .venv/bin/syncmld ] || .venv/bin/python -m pip install -q .
exec .venv/bin/syncmld "$@"
