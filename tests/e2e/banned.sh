#!/usr/bin/env bash
# Source check: functions that are unsafe by design are not called anywhere in src/ or include/
# (comments are stripped first, so prose may name them).
set -u
cd "$(dirname "$0")/../.."
hits=""
for f in $(find src include -name '*.[ch]'); do
    h=$(gcc -fpreprocessed -dD -E -P "$f" 2>/dev/null |
        grep -n -E '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|atof|gets)\s*\(' || true)
    [ -n "$h" ] && hits="$hits$f: $h"$'\n'
done
if [ -n "$hits" ]; then
    echo "banned functions used:"; printf '%s' "$hits"; exit 1
fi
# The check itself must catch a call.
printf 'void f(char *d, const char *s) { strcpy(d, s); }\n' > /tmp/banned-self-test.c
gcc -fpreprocessed -dD -E -P /tmp/banned-self-test.c | grep -q -E '\bstrcpy\s*\(' || exit 1
rm -f /tmp/banned-self-test.c
