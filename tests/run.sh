#!/usr/bin/env bash
# Runs every test: the unit binary (one process per test), then each end-to-end script in
# tests/e2e/ (a script passes when it exits 0). Ends with "N passed, N failed".
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."
# Fixtures live in ../shared next to the checkout; a clone elsewhere falls back to /work/shared.
if [ -z "${TANDEM_SHARED:-}" ]; then
    for d in ../shared /work/shared; do
        if [ -d "$d/fixtures" ]; then export TANDEM_SHARED=$(cd "$d" && pwd); break; fi
    done
fi
if [ ! -d "${TANDEM_SHARED:-../shared}/fixtures" ]; then
    echo "tests: fixtures not found (set TANDEM_SHARED to the shared/ folder)" >&2
    echo "0 passed, 1 failed"; exit 1
fi
passed=0; failed=0
out=$(mktemp)
"$BUILD/tests/unit" | tee "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$'
p=$(grep -c '^ok ' "$out"); f=$(grep -c '^FAIL ' "$out")
# A unit binary that died before its summary line counts as a failure.
grep -q -E '^[0-9]+ passed, [0-9]+ failed$' "$out" || f=$((f + 1))
passed=$((passed + p)); failed=$((failed + f))
rm -f "$out"
for t in tests/e2e/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    start=$(date +%s%N)
    if log=$(BUILD="$BUILD" TANDEM="$BUILD/tandem" bash "$t" 2>&1); then
        ms=$(( ($(date +%s%N) - start) / 1000000 ))
        printf 'ok   e2e/%s (%d.%02ds)\n' "$name" $((ms / 1000)) $((ms % 1000 / 10))
        passed=$((passed + 1))
    else
        printf 'FAIL e2e/%s\n' "$name"
        printf '%s\n' "$log" | tail -n 30 | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
