#!/usr/bin/env bash
# Build the docs site (the API reference from the docstrings, and the Markdown
# guides) with warnings as errors, so a broken reference or docstring fails CI.
# Output: docs/_build/html. Run from .ci/run before the test suite, so that
# tests/test_docs_build.py finds Sphinx under CI=true.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

printf '==> %s\n' "pip install -e .[docs]"
python -m pip install -q --disable-pip-version-check -e '.[docs]'

printf '==> %s\n' "sphinx -W --keep-going -b html docs docs/_build/html"
python -m sphinx -W --keep-going -b html docs docs/_build/html
