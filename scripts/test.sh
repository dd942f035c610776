#!/usr/bin/env bash
# Installs what the tests need (the wasm toolchain, Chromium, ChromeDriver, Firefox,
# geckodriver, WebKitGTK's WebDriver, coturn, the Python peer's aiortc), builds the frontend,
# checks formatting and lints, and runs every test: unit, relay integration over real
# sockets, and end-to-end calls between real browsers and a real Python peer.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# Every Debian package at once (one `apt-get update` on a new machine); the ensure_*
# steps below then find theirs there. fonts-wqy-microhei: the Chinese UI's screenshots need
# a CJK font (phones have one). systemd: `systemd-analyze verify` checks the deploy unit.
# redis-server, haproxy: relay/tests/cluster.rs starts its own on free ports (a service
# either package may start is not used).
ensure_apt chromium chromium-driver coturn iproute2 nftables ca-certificates fonts-wqy-microhei systemd \
  firefox-esr webkit2gtk-driver xvfb python3 python3-venv redis-server haproxy
ensure_firefox
ensure_webkit
ensure_python_peer
ensure_axe
build_frontend
say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy (native and wasm)"
cargo clippy --workspace --all-targets -q -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -q -- -D warnings
say "cargo test: unit and relay integration tests"
cargo test --workspace --exclude e2e
say "cargo test: end-to-end, real browsers, one at a time, loopback only"
cargo test -p e2e --no-run -q
in_loopback_namespace cargo test --offline -p e2e -- --nocapture --test-threads=1
