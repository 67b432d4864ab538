#!/usr/bin/env bash
# The test command: static checks, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m ruff check reviewbot tests bench
$PY -m mypy
$PY -m pytest -q "$@"
