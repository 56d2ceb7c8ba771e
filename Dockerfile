# syntax=docker/dockerfile:1.7
#
# seller-backend: ONE image holding all five binaries; each Kubernetes Deployment picks its binary with
# `command:` (deploy/base/*.yaml), and the migration Job runs `webhook-gateway migrate` from the same image.
#
# Why one image rather than five:
#   - one build: the five binaries share ~95% of their dependency graph; one `cargo build --workspace` compiles
#     it once, where five images would compile it five times or need a shared cache to avoid it;
#   - one scan: one SBOM and one vulnerability report per release instead of five near-identical ones;
#   - one tag: a release is one immutable tag, so the five Deployments and the migration Job cannot run
#     different versions of the domain code, the schema (migrations are embedded) or the event formats;
#   - the cost, ~5 x 15 MB of binaries that each pod carries but does not run, is small next to that.
#
# Build:  docker build -t <registry>/seller-backend:<version> .
# Run:    docker run --rm <registry>/seller-backend:<version> webhook-gateway --help
#
# No database is needed at build time: queries are checked at run time (no SQLX_OFFLINE / .sqlx needed), and the
# migrations/ directory is embedded into every binary.

# ---- build ------------------------------------------------------------------------------------------------
# Debian 13 (trixie) builder to match the glibc of the distroless debian13 runtime below.
FROM rust:1.95-trixie AS builder

# librdkafka (rdkafka-sys) is built from source by its build script: it needs a C toolchain, make and perl
# (present in this image) and cmake/pkg-config for some of its dependencies.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake pkg-config \
    && rm -rf /var/lib/apt/lists/*

# Link zlib statically (libz-sys), so the binaries need nothing beyond glibc and libgcc: the distroless cc
# image carries no libz.so.1.
ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

WORKDIR /src
COPY . .

# rust-toolchain.toml pins the exact toolchain; rustup installs it here if the image's differs.
# Cache mounts keep the registry and target directory between builds (BuildKit); the binaries are copied out
# of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --workspace --locked \
    && mkdir -p /out \
    && for bin in webhook-gateway order-publisher catalog-sync-worker delivery-status-consumer campaign-api; do \
         cp "target/release/$bin" "/out/$bin"; \
       done

# ---- runtime ----------------------------------------------------------------------------------------------
# distroless cc: glibc, libgcc, CA certificates (Shopee and Google APIs are TLS), tzdata; no shell, no package
# manager. The :nonroot tag runs as uid/gid 65532, the same ids the Deployments require.
FROM gcr.io/distroless/cc-debian13:nonroot AS runtime

LABEL org.opencontainers.image.title="seller-backend" \
      org.opencontainers.image.description="Shopee marketplace integration: webhook-gateway, order-publisher, catalog-sync-worker, delivery-status-consumer, campaign-api"

COPY --from=builder /out/ /usr/local/bin/

USER 65532:65532
# Every binary serves its API (if any), /health/live, /health/ready and /metrics on HTTP_ADDR (default 0.0.0.0:8080).
EXPOSE 8080
# No ENTRYPOINT: the Deployment's `command` names the binary, e.g. ["/usr/local/bin/order-publisher", "serve"].
# Running the image without a command prints webhook-gateway's help (binaries, env vars).
CMD ["/usr/local/bin/webhook-gateway", "--help"]
