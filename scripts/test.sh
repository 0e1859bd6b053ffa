#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, every test of every crate, and the
# official Python Qdrant client against the server (its venv is created under target/pyvenv).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== rustfmt"
cargo fmt --all -- --check

echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked
fi

# The official Python qdrant-client against the real server binary (built by the tests above).
echo "== python client compatibility"
GRAPE_BIN=target/debug/grape ./scripts/python-tests.sh
echo "== all tests passed"
