#!/usr/bin/env bash
# Runs the unit tests (doctest) and every tests/integration/*.sh, then prints one closing line:
#   tests: N passed, M failed
# counting every unit test case and every integration test. Exits non-zero when anything failed.
# An integration test is a script: exit 0 passes, 77 skips (missing kernel feature), else fails.
set -u
OUT=${OUT:-build}
export CFD_BIN="$PWD/$OUT/cfdtunnel"
passed=0
failed=0
skipped=0

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== unit tests ($OUT/unit_tests)"
"$OUT/unit_tests" --no-intro=true --duration=false 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
if [[ -n $summary ]]; then
    read -r p f s < <(sed -E 's/.*\| *([0-9]+) passed *\| *([0-9]+) failed *\| *([0-9]+) skipped.*/\1 \2 \3/' <<<"$summary")
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
fi
if [[ $rc -ne 0 && ( -z $summary || ${f:-0} -eq 0 ) ]]; then
    echo "unit_tests exited with status $rc"
    failed=$((failed + 1))   # crashed before its summary, or a sanitizer report
fi

shopt -s nullglob
for t in tests/integration/*.sh; do
    name=$(basename "$t" .sh)
    start=$(date +%s)
    timeout --kill-after=10 600 bash "$t" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    if [[ $rc -eq 0 ]]; then
        echo "PASS integration/$name (${secs}s)"
        passed=$((passed + 1))
    elif [[ $rc -eq 77 ]]; then
        echo "SKIP integration/$name: $(tail -n 1 "$log")"
        skipped=$((skipped + 1))
    else
        echo "FAIL integration/$name (status $rc, ${secs}s); its output:"
        sed 's/^/    /' "$log" | tail -n 60
        failed=$((failed + 1))
    fi
done

if [[ $skipped -gt 0 ]]; then
    echo "($skipped skipped)"
fi
echo "tests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
