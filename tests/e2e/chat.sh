#!/usr/bin/env bash
# tandem chat over a pipe: replies are produced turn after turn, /reset forgets the
# conversation (the same first message then gets the same greedy reply), a model without a
# chat template falls back to ChatML with a warning.
set -eu
T=${TANDEM:-build/tandem}
S=${TANDEM_SHARED:-../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf 'Hello there\nTell me more\n/reset\nHello there\n/quit\nnever read\n' |
    "$T" chat -m "$S/models/stories260K.gguf" -n 16 --temp 0 > "$tmp/out" 2> "$tmp/err"
grep -q "using ChatML" "$tmp/err"
# Reply 1, reply 2, the reset notice, reply 3 (= reply 1).
mapfile -t lines < <(grep -v '^$' "$tmp/out")
[ "${#lines[@]}" -ge 4 ]
grep -q "(conversation reset)" "$tmp/out"
first=$(grep -v '^$' "$tmp/out" | head -1)
after_reset=$(sed -n '/(conversation reset)/,$p' "$tmp/out" | grep -v '^$' | sed -n 2p)
[ -n "$first" ] && [ "$first" = "$after_reset" ]
! grep -q "never read" "$tmp/out"
# Errors.
set +e
echo hi | "$T" chat -m "$tmp/none.gguf" 2> /dev/null; [ $? -eq 1 ] || exit 1
echo hi | "$T" chat 2> /dev/null; [ $? -eq 2 ] || exit 1
exit 0
