#!/usr/bin/env bash
# Build the pinned kustomize into .state/tools/bin from the Go module proxy (Go is on every
# machine of ours; the Go build cache makes later runs instant). Prints the binary's path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KUSTOMIZE_VERSION=v5.7.1  # v5.8 needs Go 1.27
BIN="$ROOT/.state/tools/bin"
if [[ ! -x "$BIN/kustomize" ]] || ! "$BIN/kustomize" version 2>/dev/null | grep -q "$KUSTOMIZE_VERSION"; then
  command -v go >/dev/null || { echo "deploy/k8s/tools.sh: Go is needed to build kustomize" >&2; exit 1; }
  mkdir -p "$BIN"
  GOBIN="$BIN" GOTOOLCHAIN=local GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
fi
echo "$BIN/kustomize"
