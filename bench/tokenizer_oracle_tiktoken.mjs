// Reference run of tiktoken (npm, WASM build of OpenAI's Rust tiktoken) with its bundled GPT-2
// ranks: encodes TEXT in the same 64 KiB documents as bench_tokenizer, prints MB/s and compares
// with bench_tokenizer's -o ids file (for ggml-vocab-gpt-2.gguf, whose ids are GPT-2's).
// Usage: NODE_PATH=<dir with node_modules> node tokenizer_oracle_tiktoken.mjs TEXT IDS.txt
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.NODE_PATH + '/');
const { get_encoding } = require('tiktoken');
const enc = get_encoding('gpt2');
const data = readFileSync(process.argv[2]);
const docs = [];
for (let pos = 0; pos < data.length;) {
    let end = Math.min(pos + 65536, data.length);
    while (end < data.length && data[end - 1] !== 10) end++;
    docs.push(data.subarray(pos, end).toString('utf8'));
    pos = end;
}
let best = 1e30, out;
for (let r = 0; r < 3; r++) {
    const t = process.hrtime.bigint();
    out = docs.map((d) => enc.encode(d, [], []));
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
}
const ours = readFileSync(process.argv[3], 'utf8').split('\n').slice(0, docs.length)
    .map((l) => (l.length ? l.split(' ').map(Number) : []));
let same = 0, nIds = 0, diff = 0;
for (let i = 0; i < docs.length; i++) {
    const a = out[i], b = ours[i];
    nIds += a.length;
    let eq = a.length === b.length;
    for (let k = 0; k < Math.min(a.length, b.length); k++) if (a[k] !== b[k]) { eq = false; diff++; }
    diff += Math.abs(a.length - b.length);
    if (eq) same++;
}
console.log(`tiktoken gpt2: ${(data.length / 1e6 / best).toFixed(1)} MB/s, ${nIds} ids; ` +
    `documents identical ${same}/${docs.length}, differing ids ${diff}`);
