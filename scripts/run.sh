#!/usr/bin/env bash
# Installs what is missing, builds the frontend and the relay, and serves the product on
# http://localhost:${RELAY_PORT:-8080}. Every relay setting can be passed as a flag
# (bash scripts/run.sh --help) or an environment variable (see README).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
build_frontend
say "starting the relay: open http://localhost:${RELAY_PORT:-8080}"
exec cargo run "${SHIPPED_BUILD[@]}" -p relay -- --static-dir dist "$@"
