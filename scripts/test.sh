#!/usr/bin/env bash
# The test command: static checks, then the whole test suite (slow tests included: they
# import the kernel tree, build and boot kernels; caches make later runs fast).
# Pass pytest options through, e.g.  scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=${PYTHON:-python3}
$PY -m ruff check reviewbot tests bench
$PY -m mypy
$PY -m pytest -q --durations=15 "$@"
