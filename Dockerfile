# Both binaries, built static (musl) and shipped on a distroless base.
#   docker build -t kube-oidc .
# The chart runs /kube-oidc-operator and /kube-oidc-provider from this image as user 65532.
FROM rust:1.89-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools cmake clang \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
        -p kube-oidc-operator -p kube-oidc-provider \
    && cp target/x86_64-unknown-linux-musl/release/kube-oidc-operator \
          target/x86_64-unknown-linux-musl/release/kube-oidc-provider /

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kube-oidc-operator /kube-oidc-provider /
USER 65532:65532
ENTRYPOINT ["/kube-oidc-provider"]
