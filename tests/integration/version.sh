#!/usr/bin/env bash
# `cfdtunnel version` prints the version and the io_uring features in use.
. "$(dirname "$0")/lib/common.sh"
out=$("$CFD_BIN" version)
echo "$out"
grep -Eq '^cfdtunnel version [0-9]{4}\.[0-9]+\.[0-9]+$' <<<"$out" || fail "no version line"
grep -Eq '^io_uring features: ' <<<"$out" || fail "no io_uring features line"
if grep -q 'unavailable' <<<"$out"; then
    echo "io_uring is refused here"
    exit 77
fi
for f in single_issuer defer_taskrun multishot_accept multishot_recv; do
    grep -Eq "io_uring features: .*\b$f\b" <<<"$out" || fail "feature $f missing"
done
