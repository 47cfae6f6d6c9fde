#!/usr/bin/env bash
# Set up everything the tests need, then run the linter and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/ruff check artfs tests bench
.venv/bin/ruff format --check --quiet artfs tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -n auto "$@"
