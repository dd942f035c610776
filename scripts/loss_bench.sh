#!/usr/bin/env bash
# What a listener hears under packet loss (issue 16): builds dist/ as it ships, then calls
# between two real Chromium pages in the tests' loopback network namespace while nftables
# drops 0, 3, 10 and 20 % of every UDP packet (both directions alike), and prints per loss
# level and direction: the audio the listener's decoder had to conceal, the network's loss,
# what the talker sent and its codec line, the jitter buffer, and the MOS the page showed.
# Figures only, no verdict; `grep BENCH` finds the lines to keep. Loss levels may be given
# as arguments (`bash scripts/loss_bench.sh 10 20`), and `--settle S` / `--seconds S` change
# how long each call settles after the loss begins (20 s) and how long it is measured (30 s).
# E2E_STATIC_DIR=<folder> serves another build of the frontend instead of dist/ (an older
# commit's `dist/`, for the figures before a change).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_apt chromium chromium-driver nftables iproute2
build_frontend
say "building the benchmark (the end-to-end harness's build, with the relay in it)"
cargo build -q -p e2e --bin loss-bench
say "machine: $(nproc) cores, $(chromium --version 2>/dev/null | head -1)"
say "one call per loss level, about a minute each"
in_loopback_namespace "target/debug/loss-bench" "$@"
