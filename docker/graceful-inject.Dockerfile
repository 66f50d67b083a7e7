# The webhook's image (graceful-inject serve, deploy/webhook/): nothing but
# the static graceful-inject binary. It needs no libc, /etc or /proc
# (injector/tests/webhook.rs runs it chrooted into such a root).
#
# Release build (multi-stage, musl, on a machine with a Docker engine):
#   docker build -f docker/graceful-inject.Dockerfile -t graceful-inject .
# From a binary already built here (glibc static, the tested build):
#   cargo build --release -p graceful-inject
#   docker build -f docker/graceful-inject.Dockerfile --target prebuilt -t graceful-inject .

FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev gcc   # ring (TLS) compiles C
WORKDIR /src
COPY . .
RUN cargo build --release -p graceful-inject --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/graceful-inject /graceful-inject

FROM scratch AS release
COPY --from=build --chmod=0555 /graceful-inject /graceful-inject
USER 65532:65532
ENTRYPOINT ["/graceful-inject"]

FROM scratch AS prebuilt
COPY --chmod=0555 target/x86_64-unknown-linux-gnu/release/graceful-inject /graceful-inject
USER 65532:65532
ENTRYPOINT ["/graceful-inject"]

FROM release
