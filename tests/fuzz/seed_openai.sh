#!/usr/bin/env bash
# Seeds the OpenAI-side fuzz corpora: request bodies for fuzz_openai_request in DIR1, and
# "schema\0document" pairs (response_format schemas with outputs) for fuzz_json_schema in DIR2.
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 REQUEST_DIR SCHEMA_DIR" >&2; exit 2; fi
req=$1 sch=$2
mkdir -p "$req" "$sch"

n=0
put_req() { n=$((n + 1)); printf '%s' "$1" >"$req/seed-$n.json"; }

put_req '{"model":"tiny","messages":[{"role":"user","content":"Hello"}]}'
put_req '{"model":"tiny","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hi in Fran\u00e7ais \ud83d\ude00"},{"role":"assistant","content":null},{"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":"part two"}],"name":"bob"}],"max_tokens":64,"temperature":0.7,"top_p":0.9,"seed":42,"stop":["\n\n","END"],"stream":true,"stream_options":{"include_usage":true}}'
put_req '{"model":"tiny","messages":[{"role":"user","content":"caf\u00e9 \u4e2d\u6587 abc"}],"logprobs":true,"top_logprobs":5,"max_completion_tokens":16,"presence_penalty":0.5,"frequency_penalty":-0.5,"logit_bias":{"0":-100,"42":3.5},"user":"u-1","n":1}'
put_req '{"model":"tiny","messages":[{"role":"developer","content":"json only"},{"role":"user","content":"a person"}],"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string","maxLength":20},"age":{"type":"integer","minimum":0}},"required":["name","age"],"additionalProperties":false}}}}'
put_req '{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"tools":[],"tool_choice":"none","stop":"STOP"}'
put_req '{"model":"tiny","prompt":"Once upon a time","max_tokens":32,"echo":true,"logprobs":3,"suffix":"","best_of":1,"stream":false}'
put_req '{"model":"tiny","prompt":[1,15043,29892,3186],"max_tokens":4}'
put_req '{"model":"tiny","prompt":["only one"],"stream":true}'
put_req '{"model":"tiny","prompt":[[7,8,9]]}'
put_req '{"model":"tiny","input":"embed this sentence"}'
put_req '{"model":"tiny","input":["first","second \u00fc","!~ third"],"encoding_format":"base64","user":"x"}'
put_req '{"model":"tiny","input":["a"],"encoding_format":"float"}'
put_req '{"model":"tiny","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}'
put_req '{"model":"","messages":[]}'

n=0
put_sch() { n=$((n + 1)); printf '%s\0%s' "$1" "$2" >"$sch/seed-$n"; }

put_sch '' '{"a": [1, 2.5e3, true, null], "b": "x\u00e9\n"}'
put_sch '{"type":"object","properties":{"name":{"type":"string","maxLength":20},"age":{"type":"integer","minimum":0}},"required":["name","age"],"additionalProperties":false}' '{"name": "Ada", "age": 36}'
put_sch '{"type":"array","items":{"type":"number"},"minItems":1,"maxItems":4}' '[1, -2.5, 3e-2]'
put_sch '{"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":false}' '[7,"seven"]'
put_sch '{"enum":["red","green",3,null,[1,{"a":true}]]}' '[1,{"a":true}]'
put_sch '{"const":{"a":[1,2]}}' '{"a":[1,2]}'
put_sch '{"anyOf":[{"type":"string","maxLength":2},{"type":"array","items":{"type":"boolean"}}]}' '[true,false]'
put_sch '{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v"]}},"$ref":"#/$defs/node"}' '{"v":1,"next":{"v":2,"next":null}}'
put_sch '{"type":"array","items":{"$ref":"#"},"maxItems":2}' '[[],[[]]]'
put_sch '{"type":["boolean","null"]}' 'false'
put_sch '{"type":"string","minLength":2,"format":"date-time"}' '"2024-07-26T12:00:00Z \ud83d\ude00"'
put_sch '{"type":"integer"}' '-1234567890123456'
put_sch '{"type":"object","additionalProperties":{"type":"string"}}' '{"k\"ey": "v", "x": ""}'
echo "corpora: $(ls "$req" | wc -l) files in $req, $(ls "$sch" | wc -l) in $sch"
