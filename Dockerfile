# tailor's container image: `docker build -t tailor:0.1.0 .` (docs/install.md).
#
# Build stage: the same Debian release (bookworm) and the same cargo build
# CI runs, in release mode. The crate uses rustls (no OpenSSL); aws-lc-rs
# compiles its C code with the stage's gcc.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY tests ./tests
COPY models ./models
COPY simulations ./simulations
COPY docs ./docs
RUN cargo build --release --locked --bin tailor \
 && install -D -m 0755 target/release/tailor /out/tailor

# Runtime stage: distroless "cc" is glibc, libgcc and the CA certificates
# (/etc/ssl/certs/ca-certificates.crt), no shell, no package manager; the
# binary needs nothing more (tests/chart checks its NEEDED libraries). The
# nonroot variant runs as uid/gid 65532, which the Helm chart enforces too.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tailor /usr/local/bin/tailor
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tailor"]
CMD ["run"]
