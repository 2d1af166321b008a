#!/usr/bin/env bash
# Static checks, from the repository root:
#   .venv/bin/ruff check .                                 lint (line length 120)
#   .venv/bin/ruff format --check --diff .                 formatting (fix: .venv/bin/ruff format .)
#   .venv/bin/lint-imports                                 the walls between nbpack/, server/ and the runtime
#   .venv/bin/mypy                                         types of nbpack/, server/, wsgi.py ([tool.mypy])
# tests/unit/test_architecture.py runs lint-imports inside the test suite; this script runs all four and fails on any.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for step in "ruff check ." "ruff format --check ." "lint-imports" "mypy"; do
  echo "== $step"
  .venv/bin/$step || status=1
done
exit $status
