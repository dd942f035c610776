#!/usr/bin/env bash
# Trunk's post_build hook (Trunk.toml): splits the app's wasm at its split points, so that a
# room link's first load carries only the page and the call's code comes at the first tap
# (frontend/src/call.rs, `start`). Trunk builds the wasm with cargo (`--emit-relocs`, from
# .cargo/config.toml: the splitter follows the relocations to see what calls what) and runs
# wasm-bindgen on it; this redoes the steps after cargo, in the order splitting needs:
#
#   1. wasm-split-cli cuts cargo's wasm into the main module, one module per split point
#      and `__wasm_split.js`, the small script that loads them;
#   2. wasm-bindgen makes the main module's JavaScript (keeping the function table and the
#      memory exported: the split modules link to them);
#   3. wasm-opt -Oz shrinks every module in a release build (trunk's own wasm-opt is off:
#      `data-wasm-opt="0"`);
#   4. the split modules and the loader get a content hash in their name, as trunk's files
#      have, so that the relay can let browsers cache them for good, and a page never runs
#      against the split modules of another build.
#
# The results replace trunk's, under trunk's names, in its staging directory.
set -euo pipefail

staging="${TRUNK_STAGING_DIR:?run by trunk as a post_build hook}"
shopt -s nullglob
scripts=("$staging"/frontend-*.js)
[ "${#scripts[@]}" -eq 1 ] || { echo "split_wasm.sh: expected one frontend-*.js in $staging, found ${#scripts[@]}" >&2; exit 1; }
name="$(basename "${scripts[0]}" .js)"
input="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/frontend.wasm"
[ -f "$input" ] || { echo "split_wasm.sh: no $input (index.html builds with data-cargo-profile=wasm-release)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
features=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals
  --enable-reference-types --enable-multivalue)

# 16 hex digits of a file's SHA-256, for its name.
hash_of() { sha256sum "$1" | cut -c1-16; }

wasm-split-cli "$input" "$work/split" --target web --out-name "$name"
wasm-bindgen --target web --no-typescript --keep-lld-exports --out-dir "$work/bindgen" --out-name "$name" \
  "$work/split/$name.wasm"
# Shrinks a module; `trunk serve` (a debug build) skips it, for speed.
shrink() {
  if [ "${TRUNK_PROFILE:-release}" = release ]; then wasm-opt -Oz "${features[@]}" "$1" -o "$2"; else cp "$1" "$2"; fi
}
shrink "$work/bindgen/${name}_bg.wasm" "$staging/${name}_bg.wasm"

loader="$work/split/__wasm_split.js"
for module in "$work"/split/split_*.wasm; do
  plain="$(basename "$module" .wasm)"
  shrink "$module" "$work/$plain.wasm"
  hashed="$plain-$(hash_of "$work/$plain.wasm").wasm"
  mv "$work/$plain.wasm" "$staging/$hashed"
  sed -i "s|\"./$plain.wasm\"|\"./$hashed\"|" "$loader"
done
hashed_loader="__wasm_split-$(hash_of "$loader").js"
cp "$loader" "$staging/$hashed_loader"
# Only the `import` names the file; the wasm's imports keep the name it was linked with.
sed "/^import /s|\"./__wasm_split.js\"|\"./$hashed_loader\"|" "$work/bindgen/$name.js" > "$staging/$name.js"
grep -q "\"./$hashed_loader\"" "$staging/$name.js" || { echo "split_wasm.sh: $name.js does not import the loader" >&2; exit 1; }
