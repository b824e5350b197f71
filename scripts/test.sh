#!/usr/bin/env bash
# Install hnnkit with its test tools into .venv (pinned by constraints.txt), lint, check the
# layering (ARCHITECTURE.md, contracts in pyproject.toml), run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache
# one test process per CPU core (pytest-xdist); tests marked slow are left out (pyproject.toml)
.venv/bin/python -m pytest -q -n auto "$@"
