#!/usr/bin/env bash
# Install hnnkit into .venv (pinned by constraints.txt) and run the reproduction (quick profile by default).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e .
.venv/bin/hnnkit reproduce "$@"
