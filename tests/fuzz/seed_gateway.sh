#!/usr/bin/env bash
# Seeds the gateway-side fuzz corpora: Anthropic Messages bodies for fuzz_anthropic_request in
# DIR1, tandem.yaml variants for fuzz_config in DIR2, prompts with personal data for fuzz_pii
# in DIR3. Run from the repository root (the config seeds start from examples/tandem.yaml).
set -euo pipefail
if [ $# -ne 3 ]; then echo "usage: $0 ANTHROPIC_DIR CONFIG_DIR PII_DIR" >&2; exit 2; fi
ant=$1 cfg=$2 pii=$3
mkdir -p "$ant" "$cfg" "$pii"

n=0
put_ant() { n=$((n + 1)); printf '%s' "$1" >"$ant/seed-$n.json"; }

put_ant '{"model":"claude","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}'
put_ant '{"model":"claude","max_tokens":1024,"system":"You are terse.","messages":[{"role":"user","content":"Say hi in Fran\u00e7ais \ud83d\ude00"},{"role":"assistant","content":"Bonjour"},{"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":"part two"}]}],"temperature":0.7,"top_p":0.9,"top_k":40,"stop_sequences":["\n\nHuman:","END"],"stream":true,"metadata":{"user_id":"u-1"}}'
put_ant '{"model":"claude","max_tokens":16,"system":[{"type":"text","text":"rule one"},{"type":"text","text":"rule two","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"x"},{"role":"assistant","content":""}]}'
put_ant '{"model":"claude","max_tokens":8,"messages":[{"role":"user","content":"q"}],"tools":[],"tool_choice":{"type":"auto"},"thinking":{"type":"disabled"}}'
put_ant '{"model":"claude","max_tokens":8,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}'
put_ant '{"model":"claude","max_tokens":8,"messages":[{"role":"system","content":"no"}]}'
put_ant '{"model":"claude","max_tokens":0,"messages":[]}'
put_ant '{"model":"claude","max_tokens":8,"stop_sequences":["a","b","c","d","e"],"messages":[{"role":"user","content":"five stops"}]}'
put_ant '{"model":"claude","max_tokens":8,"messages":[{"role":"user","content":"t"}],"tools":[{"name":"get","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"},"thinking":{"type":"enabled","budget_tokens":1024}}'
put_ant '[1,2,3]'

n=0
put_cfg() { n=$((n + 1)); printf '%s' "$1" >"$cfg/seed-$n.yaml"; }

cp examples/tandem.yaml "$cfg/seed-example.yaml"
put_cfg 'listen: 8080
models:
  - name: m
    local: { path: m.gguf }
'
put_cfg 'listen: "[::1]:0"
limits: { max_body_bytes: 1KiB, max_messages: 2, max_tokens: 16, queue: 1 }
models:
  - name: a
    provider: openai-compatible
    base_url: "http://user:pass@host:8000/v1?key=abc"
    api_key: env:FUZZ_KEY
  - name: b
    provider: gemini
    api_key: literal-key
    model: gemini-1.5-flash
    price: { input_per_mtok: 0.075, output_per_mtok: 0.3 }
  - name: c
    provider: mistral
    api_key: env:OPENAI_API_KEY
    privacy: { action: pseudonymize, detect: [email, person] }
routes:
  - name: r
    strategy: least_latency
    targets: [a, b]
    fallback: [c]
privacy: { action: allow, detect: [] }
'
put_cfg 'listen: :9000
models:
  - name: loc
    local: { path: /tmp/x.gguf, parallel: 2, ctx_size: 512, threads: 1, batch: 8 }
  - name: up
    provider: anthropic
    api_key: env:FUZZ_EMPTY
privacy:
  action: route_local
  local_model: loc
'
put_cfg 'listen: 127.0.0.1:8080
models:
  - name: "gpt-4o/mini@v1+x"
    provider: openai
    api_key: env:ANTHROPIC_API_KEY
    base_url: https://api.openai.com/v1/
routes:
  - name: w
    strategy: weighted
    targets:
      - { model: "gpt-4o/mini@v1+x", weight: 7 }
'
put_cfg 'listen: 0.0.0.0:1
models:
  - name: loc
    local: { path: "a b.gguf" }
  - name: up
    provider: anthropic
    api_key: env:FUZZ_KEY
    privacy: { action: route_local, local_model: loc }
privacy:
  action: pseudonymize
  detect: [email, phone, card, iban, ipv4, ipv6, ssn, national_id, api_key, private_key, person]
'
put_cfg 'models: &a [ *a ]'
put_cfg '{listen: 1, models: [{name: x, local: {path: y}}], privacy: {action: block}}'

n=0
put_pii() { n=$((n + 1)); printf '%b' "$1" >"$pii/seed-$n.txt"; }

put_pii 'write to john.doe@example.com today, or call +1 (555) 123-4567 now'
put_pii 'IBAN: DE89 3704 0044 0532 0130 00. Card 4111 1111 1111 1111, SSN 123-45-6789.'
put_pii 'server 192.168.0.10 and 2001:db8::1 and fe80::1%eth0; key sk-proj-abcdefghijklmnopqrstuvwxyz012345'
put_pii 'Dear Mr. John Smith, Maria and Anna met Dr. Peter Miller at 10.0.0.1.'
put_pii '-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun
-----END RSA PRIVATE KEY-----
AKIAIOSFODNN7EXAMPLE ghp_abcdefghijklmnopqrstuvwxyz0123456789'
put_pii 'already [EMAIL_1] and [PERSON_2] and [IPV6_1 and [ unbalanced ] a@b.co'
put_pii 'caf\xc3\xa9 \xff\xfe m\xc3\xbcller@beispiel.de +44 20 7946 0958 123.45.67.89'
echo "corpora: $(ls "$ant" | wc -l) files in $ant, $(ls "$cfg" | wc -l) in $cfg, $(ls "$pii" | wc -l) in $pii"
