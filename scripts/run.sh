#!/usr/bin/env bash
# Install syncmld into .venv (once) and run it; arguments go to `syncmld`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
[ -x .venv/bin/syncmld ] || .venv/bin/python -m pip install -q .
exec .venv/bin/syncmld "$@"
