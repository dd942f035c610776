#!/usr/bin/env bash
# The first open of a link on a phone (issue 13): builds dist/ as it ships, then prints the
# raw, gzip and brotli bytes of each asset, and the cold-open times of the room link and
# the home page in real Chromium on Lighthouse's mobile profile (150 ms round trip,
# 1.6 Mbit/s down, 750 kbit/s up, a round trip per TCP and TLS handshake), over HTTP, HTTPS,
# and HTTPS without HTTP/2: median of 5 and every sample. Figures only, no verdict; `grep
# BENCH` finds the lines to keep. The relay runs inside the benchmark (e2e::Relay, as in the
# end-to-end tests) and serves dist/; everything is on loopback, so it needs no namespace.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_apt chromium chromium-driver
build_frontend
say "building the benchmark (the end-to-end harness's build, with the relay in it)"
cargo build -q -p e2e --bin first-load
say "machine: $(nproc) cores, $(chromium --version 2>/dev/null | head -1)"
say "opening each page 5 times in each way, cold (about 3 minutes)"
cargo run -q -p e2e --bin first-load
