# syntax=docker/dockerfile:1
#
# The Lyceum image: one binary, `lyceum`, that serves any service (`serve identity`),
# migrates (`migrate all`), checks health and reconciles statistics.
#
#   docker build -t lyceum:dev .
#   docker run --rm lyceum:dev --help
#
# Stages: `chef` (toolchain + cargo-chef), `planner` (dependency recipe from the
# manifests), `builder` (dependencies first, cached while only our sources change; then
# the binary), `runtime` (distroless: glibc and CA certificates, no shell, no package
# manager). Only `-p lyceum` is built: the load generator `lyceum-bench` stays out.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
# The slim Rust image already has gcc and libc6-dev, all the build needs: protoc is
# vendored by the proto crate and TLS is not linked against OpenSSL.
RUN cargo install cargo-chef --locked
WORKDIR /src

FROM chef AS planner
COPY . .
# recipe.json describes the manifests and Cargo.lock only, so it changes (and the next
# stage's dependency layer is rebuilt) only when dependencies change.
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release -p lyceum --recipe-path recipe.json
# Sources, protobuf definitions and the SQL migrations (embedded at compile time).
COPY . .
RUN cargo build --release --locked -p lyceum \
    && install -m 0755 target/release/lyceum /usr/local/bin/lyceum

# Bookworm-based like the builder, so the glibc the binary was linked against is there.
# The `nonroot` variant; its default user is replaced below by our fixed UID. Pin it by
# digest (`@sha256:...`) in a release pipeline for byte-reproducible images.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /usr/local/bin/lyceum /usr/local/bin/lyceum

# A fixed, unprivileged UID/GID (no entry in /etc/passwd is needed): Kubernetes
# manifests refer to the same numbers in runAsUser/runAsGroup.
USER 10001:10001

ENV LYCEUM_LISTEN=0.0.0.0:50051 \
    LYCEUM_LOG_FORMAT=json \
    RUST_LOG=info

EXPOSE 50051 9464

# Asks the server's grpc.health.v1.Health service; exits 0 only when SERVING. Docker
# and compose use it; Kubernetes ignores it and uses the gRPC probes of the manifests.
# Containers running one-shot commands (migrate, verify) finish before it matters.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["lyceum", "healthcheck", "--addr", "http://127.0.0.1:50051"]

ENTRYPOINT ["lyceum"]
CMD ["serve", "all"]
