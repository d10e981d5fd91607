#!/usr/bin/env bash
# make demo: the main job on loopback. The tunnel itself (edge locations, a connector, an origin)
# arrives with the tunnel issue; until then this shows the binary and the reactor's features.
set -euo pipefail
OUT=${OUT:-build}
"$OUT/cfdtunnel" version
