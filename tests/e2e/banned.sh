#!/usr/bin/env bash
# Source check: functions that are unsafe by design are not used anywhere in src/.
set -u
cd "$(dirname "$0")/../.."
hits=$(grep -n -E '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|atof|gets)\s*\(' \
    $(find src include -name '*.[ch]') || true)
if [ -n "$hits" ]; then
    echo "banned functions used:"; echo "$hits"; exit 1
fi
