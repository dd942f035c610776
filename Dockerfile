# The relay and the built frontend in one small image (distroless).
#   docker build -t linkcall .
#   docker run -p 8080:8080 linkcall            # then http://localhost:8080
# See deploy/compose.yaml for the relay with coturn and HTTPS.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# wasm-split-cli splits the app's wasm (scripts/split_wasm.sh, trunk's post_build hook).
RUN rustup target add wasm32-unknown-unknown \
 && cargo install trunk --version ^0.21 --locked \
 && cargo install wasm_split_cli_support --version 0.2.4 --features build-binary --locked \
 && apt-get update && apt-get install -y --no-install-recommends npm \
 && npm install --global binaryen@132
# wasm-bindgen-cli must be exactly the version in Cargo.lock.
COPY Cargo.lock ./
RUN cargo install wasm-bindgen-cli --version \
    "$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')"
COPY . .
RUN trunk build --release \
 && find dist -type f \( -name '*.html' -o -name '*.js' -o -name '*.wasm' -o -name '*.css' \) \
      -exec gzip -9 --keep --force {} + \
 && host="$(rustc -vV | sed -n 's/^host: //p')" \
 && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$host" -p relay \
 && cp "target/$host/release/relay" /relay

# The relay links glibc in (as scripts/run.sh builds it): the image needs no C library.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /relay /usr/local/bin/relay
COPY --from=build /src/dist /srv/linkcall
ENV RELAY_BIND=0.0.0.0 \
    RELAY_PORT=8080 \
    RELAY_STATIC_DIR=/srv/linkcall \
    RELAY_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/relay"]
