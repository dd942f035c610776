#!/usr/bin/env bash
# Installs what the tests need (the wasm toolchain, Chromium and ChromeDriver), builds the
# frontend, checks formatting and lints, and runs every test: unit, relay integration over
# real sockets, and the end-to-end call between two real Chromium instances.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_apt chromium chromium-driver ca-certificates
build_frontend
say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy (native and wasm)"
cargo clippy --workspace --all-targets -q -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -q -- -D warnings
say "cargo test --workspace (unit, integration, end-to-end)"
cargo test --workspace -- --nocapture
