#!/usr/bin/env bash
# Qdrant-compatibility tests: runs the official Python `qdrant-client` against a real `grape serve`.
#
#   GRAPE_BIN   server binary to test (default: target/debug/grape; build it first, e.g.
#               `cargo build -p grape-server`)
#   extra arguments are passed to pytest, e.g. `scripts/python-tests.sh -k search -x`
#
# The virtualenv lives in target/pyvenv and is (re)installed whenever tests/python/requirements.txt
# changes (a copy of the requirements it was built from is kept inside it).
set -euo pipefail

# A GRAPE_BIN given by the caller is relative to the caller's directory; the default to the repository.
if [[ -n "${GRAPE_BIN:-}" && "$GRAPE_BIN" != /* ]]; then
    GRAPE_BIN="$PWD/$GRAPE_BIN"
fi
cd "$(dirname "$0")/.."

REQ=tests/python/requirements.txt
VENV=target/pyvenv
GRAPE_BIN="${GRAPE_BIN:-$PWD/target/debug/grape}"

if [[ ! -f "$GRAPE_BIN" || ! -x "$GRAPE_BIN" ]]; then
    echo "error: grape server binary not found or not executable: $GRAPE_BIN" >&2
    echo "       build it (cargo build -p grape-server) or point GRAPE_BIN at it" >&2
    exit 1
fi
export GRAPE_BIN

# A fresh venv whenever the requirements changed, so no package of an older set lingers.
if [[ ! -x "$VENV/bin/python" ]] || ! cmp -s "$REQ" "$VENV/installed-requirements.txt"; then
    echo "== creating $VENV from $REQ"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    cp "$REQ" "$VENV/installed-requirements.txt"
fi

echo "== python compatibility tests (server: $GRAPE_BIN)"
exec "$VENV/bin/python" -m pytest -q -o cache_dir=target/pytest-cache tests/python "$@"
