#!/usr/bin/env bash
# Regenerates contracts artifacts and Go bindings and fails when anything
# committed differs, so the checked-in ABI/BIN/bindings always match the
# Solidity sources and the pinned compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
go generate ./...
if [ -n "$(git status --porcelain -- contracts/build chain)" ]; then
	echo "go generate changed committed files:" >&2
	git status --porcelain -- contracts/build chain >&2
	git diff --stat -- contracts/build chain >&2
	exit 1
fi
echo "generate-check: generated files are up to date"
