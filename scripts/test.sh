#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, every test of every crate, and the
# official Python Qdrant client against the server (its venv is created under target/pyvenv).
set -euo pipefail
cd "$(dirname "$0")/.."

# A one-off build (CI, a clean clone) gains nothing from incremental compilation, whose caches took
# 5 GB of the 12.5 GB a CI build used.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

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
