// Package packaging holds what a node runner installs: the .deb (nfpm
// configuration nfpm.yaml, the systemd unit, config files and maintainer
// scripts in deb/, built by scripts/deb.sh or `make deb`) and the
// Dockerfile at the repository root. It has no Go API; its tests build the
// .deb and check it (dpkg-deb, the extracted binary, systemd-analyze).
package packaging
