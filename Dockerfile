# syntax=docker/dockerfile:1
# openmyst node daemon image. Build:  docker build -t openmyst .
# Run (userspace exit mode, no privileges; Tequilapi published on the host's
# loopback only):
#   docker run -d --name openmyst -v openmyst:/var/lib/openmyst \
#     -p 127.0.0.1:4050:4050 -p 4001:4001 -p 51820:51820/udp openmyst
# Kernel exit mode needs CAP_NET_ADMIN and /dev/net/tun: see README.md
# ("Run a node in a container"). The image runs as the non-root user
# openmyst (uid 10001) by default.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.0.0~docker
RUN go build -trimpath -ldflags "-s -w -X github.com/openmyst/openmyst/buildinfo.Version=${VERSION}" -o /out/myst ./cmd/myst

FROM debian:bookworm-slim
# iproute2 and nftables: what the kernel exit mode runs; ca-certificates:
# HTTPS to chain RPC and hermes.
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates iproute2 nftables \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --system --gid 10001 openmyst \
	&& useradd --system --uid 10001 --gid openmyst --home-dir /var/lib/openmyst --shell /usr/sbin/nologin openmyst \
	&& install -d -m 0700 -o openmyst -g openmyst /var/lib/openmyst
COPY --from=build /out/myst /usr/bin/myst
COPY packaging/docker-entrypoint.sh /usr/local/bin/openmyst-entrypoint
USER openmyst:openmyst
VOLUME ["/var/lib/openmyst"]
# 4050: Tequilapi and the web UI; 4001: libp2p; 51820/udp: WireGuard.
EXPOSE 4050 4001 51820/udp
ENTRYPOINT ["/usr/local/bin/openmyst-entrypoint"]
# Listen on all of the container's addresses so a published port reaches
# Tequilapi; publish it on the host's loopback only (-p 127.0.0.1:4050:4050).
CMD ["daemon", "--tequilapi.address=0.0.0.0", "--tequilapi.allow-remote", "--p2p.listen=/ip4/0.0.0.0/tcp/4001"]
