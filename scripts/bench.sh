#!/usr/bin/env bash
# The relay next to peerjs-server (npm `peer`, run with this machine's Node.js), in one
# run, on loopback, with two relays sharing rooms through Redis beside them: builds the
# release relay and the load generator, installs peer and redis-server if missing, raises
# the open-file limit, and prints a table of figures and ratios.
# Options go to the generator: bash scripts/bench.sh --active 2000 --rate 20 --seconds 10
# (--servers relay,relays,peerjs chooses which run).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PEER_VERSION=1.0.2
if [ ! -f "$TOOLS/node_modules/peer/dist/bin/peerjs.js" ]; then
  command -v npm >/dev/null || ensure_apt nodejs npm
  say "installing peer $PEER_VERSION (peerjs-server) into $TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "peer@$PEER_VERSION" >/dev/null
fi
command -v redis-server >/dev/null || ensure_apt redis-server
say "building the release relay and the load generator"
cargo build "${SHIPPED_BUILD[@]}" -q -p relay -p bench --bin relay --bin bench
ulimit -n "$(ulimit -Hn)"
say "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)"
# The generator on CPU 0, each server on CPU 1 (the bench pins it): one core each.
PEERJS="$TOOLS/node_modules/peer/dist/bin/peerjs.js" taskset -c 0 "$SHIPPED/bench" "$@"
