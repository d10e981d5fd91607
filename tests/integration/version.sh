#!/usr/bin/env bash
# `cfdtunnel version` prints the version.
set -euo pipefail
out=$("$CFD_BIN" version)
grep -Eq '^cfdtunnel version [0-9]{4}\.[0-9]+\.[0-9]+' <<<"$out"
