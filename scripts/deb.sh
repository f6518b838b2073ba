#!/usr/bin/env bash
# Builds the openmyst .deb: a static myst binary plus the systemd unit,
# config and maintainer scripts of packaging/deb, packed by nfpm (pinned in
# packaging/nfpm/go.mod). Usage:
#   scripts/deb.sh [OUTDIR]        (default: bin/)
# Environment: MYST_DEB_VERSION (default 0.0.0~dev), GOARCH (default: host).
# Prints the path of the .deb on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-bin}
mkdir -p "$out"
out=$(cd "$out" && pwd)

export MYST_DEB_VERSION=${MYST_DEB_VERSION:-0.0.0~dev}
arch=${GOARCH:-$(go env GOARCH)}
export MYST_DEB_ARCH=$arch

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath \
	-ldflags "-s -w -X github.com/openmyst/openmyst/buildinfo.Version=$MYST_DEB_VERSION" \
	-o "$work/myst" ./cmd/myst

deb=$out/openmyst_${MYST_DEB_VERSION}_${arch}.deb
# nfpm resolves the contents' relative paths from its working directory:
# the staging directory, with the binary and a link to packaging/. The
# tool is built from its own module file (packaging/nfpm/go.mod).
ln -s "$root/packaging" "$work/packaging"
nfpm=$work/nfpm
(cd "$root/packaging/nfpm" && go build -o "$nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm)
(cd "$work" && "$nfpm" package --config packaging/nfpm.yaml --packager deb --target "$deb" >&2)
echo "$deb"
