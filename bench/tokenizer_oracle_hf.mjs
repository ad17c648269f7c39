// Reference run of Hugging Face tokenizers.js (npm @huggingface/tokenizers) on a byte-level BPE
// GGUF vocabulary: builds a tokenizer.json (BPE model, added tokens, the Split pre-tokenizers of
// tokenizer.ggml.pre, ByteLevel) from the GGUF metadata, encodes TEXT in the same 64 KiB documents
// as bench_tokenizer, prints MB/s and compares with bench_tokenizer's -o ids file.
// Usage: NODE_PATH=<node_modules dir> node tokenizer_oracle_hf.mjs VOCAB.gguf TEXT IDS.txt
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(process.env.NODE_PATH + '/');
const { Tokenizer } = await import(pathToFileURL(
    require.resolve('@huggingface/tokenizers').replace(/tokenizers\.c?js$/, 'tokenizers.mjs')).href);

function ggufKv(path) {
    const d = readFileSync(path);
    let o = 24;
    const nKv = Number(d.readBigUInt64LE(16));
    const str = () => { const n = Number(d.readBigUInt64LE(o)); o += 8; const s = d.subarray(o, o + n); o += n; return s.toString('utf8'); };
    const size = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    const scalar = (t) => {
        let v;
        switch (t) {
        case 4: v = d.readUInt32LE(o); break;
        case 5: v = d.readInt32LE(o); break;
        case 6: v = d.readFloatLE(o); break;
        case 7: v = d[o] !== 0; break;
        default: v = null;
        }
        o += size[t];
        return v;
    };
    const val = (t) => {
        if (t === 8) return str();
        if (t === 9) {
            const at = d.readUInt32LE(o); o += 4;
            const n = Number(d.readBigUInt64LE(o)); o += 8;
            const a = new Array(n);
            for (let i = 0; i < n; i++) a[i] = val(at);
            return a;
        }
        return scalar(t);
    };
    const kv = {};
    for (let i = 0; i < nKv; i++) { const k = str(); const t = d.readUInt32LE(o); o += 4; kv[k] = val(t); }
    return kv;
}

// The Split regexes per tokenizer.ggml.pre (as in src/tokenizer/pretokenize.c).
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const CASED = readFileSync(new URL('../src/tokenizer/pretokenize.c', import.meta.url), 'utf8')
    .match(/#define RE_DEEPSEEK_CASED[^\n]*\n((?:\s+"[^\n]*\n)+)/)[1]
    .split('\n').map((l) => l.trim().replace(/^"|"\s*\\?$|"$/g, '')).join('').replace(/\\\\/g, '\\');
const SETS = {
    'gpt-2': [GPT2],
    'deepseek-llm': ['[\\r\\n]', '\\s?[' + CASED + ']+',
        '\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+',
        '\\s+$', '[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+', '\\p{N}+'],
    'qwen2': ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
};

const kv = ggufKv(process.argv[2]);
const pre = kv['tokenizer.ggml.pre'] || 'gpt-2';
const toks = kv['tokenizer.ggml.tokens'], types = kv['tokenizer.ggml.token_type'];
const vocab = Object.create(null);
const added = [];
toks.forEach((t, i) => {
    if (!Object.prototype.hasOwnProperty.call(vocab, t)) vocab[t] = i;
    if (types[i] === 3 || types[i] === 4)
        added.push({ id: i, content: t, single_word: false, lstrip: false, rstrip: false,
                     normalized: false, special: types[i] === 3 });
});
const json = {
    version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
        ...SETS[pre].map((re) => ({ type: 'Split', pattern: { Regex: re }, behavior: 'Isolated', invert: false })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
             end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false,
             vocab, merges: kv['tokenizer.ggml.merges'] },
};
const tok = new Tokenizer(json, { add_bos_token: false, add_eos_token: false });
const data = readFileSync(process.argv[3]);
const docs = [];
for (let pos = 0; pos < data.length;) {
    let end = Math.min(pos + 65536, data.length);
    while (end < data.length && data[end - 1] !== 10) end++;
    docs.push(data.subarray(pos, end).toString('utf8'));
    pos = end;
}
let best = 1e30, out;
for (let r = 0; r < 2; r++) {
    const t = process.hrtime.bigint();
    out = docs.map((d) => tok.encode(d, { add_special_tokens: false }).ids);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
}
const ours = readFileSync(process.argv[4], 'utf8').split('\n').slice(0, docs.length)
    .map((l) => (l.length ? l.split(' ').map(Number) : []));
let same = 0, nIds = 0, diff = 0, shown = false;
for (let i = 0; i < docs.length; i++) {
    const a = out[i], b = ours[i];
    nIds += a.length;
    let eq = a.length === b.length;
    for (let k = 0; k < Math.min(a.length, b.length); k++) {
        if (a[k] !== b[k]) {
            if (!shown) { console.log(`doc ${i} first difference at ${k}: hf ${a.slice(k, k + 6)} ours ${b.slice(k, k + 6)}`); shown = true; }
            eq = false; diff++;
        }
    }
    diff += Math.abs(a.length - b.length);
    if (eq) same++;
}
console.log(`tokenizers.js ${pre}: ${(data.length / 1e6 / best).toFixed(1)} MB/s, ${nIds} ids; ` +
    `documents identical ${same}/${docs.length}, differing ids ${diff}`);
