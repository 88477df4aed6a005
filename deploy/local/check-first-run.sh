#!/usr/bin/env bash
# The first `make` on a machine without uv: `make sync` must find the uv it has just installed.
# Runs the Makefile's install step in a clean HOME and a PATH that holds no uv (a fresh virtual
# environment's python first), then checks that make resolves UV to an executable uv.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python=$(command -v python3)
"$python" -m venv "$work/venv"
mkdir -p "$work/home"
clean=(env -i "PATH=$work/venv/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$work/home")
if "${clean[@]}" bash -c 'command -v uv' >/dev/null; then
  echo "check-first-run: uv is on the clean PATH already; nothing to prove" >&2
  exit 1
fi
# One make run, as `make up` is one: UV must be looked up after uv-installed has run.
uv=$("${clean[@]}" make -s -C "$repo" uv-installed uv-path 2>/dev/null | tail -n 1)
"${clean[@]}" "$uv" --version
echo "check-first-run: make installed uv and resolves it to $uv"
