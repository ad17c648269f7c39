#!/usr/bin/env bash
# Fills DIR with small valid GGUF seed inputs for fuzz_gguf: hand-made files covering every
# value type, plus header-faithful miniatures of the fixture models (tiny tensors).
set -euo pipefail
if [ $# -ne 1 ]; then echo "usage: $0 DIR" >&2; exit 2; fi
dir=$1
mkdir -p "$dir"
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${TANDEM_SHARED:-$root/../shared}

# Any fixture that already fits the fuzzer's -max_len goes in as it is.
for f in "$shared"/fixtures/models/*.gguf "$shared"/fixtures/vocab/*.gguf; do
    [ -f "$f" ] || continue
    if [ "$(stat -c %s "$f")" -le 65536 ]; then cp "$f" "$dir/"; fi
done

python3 - "$dir" "$shared/fixtures/models" <<'PY'
import glob, os, struct, sys

out, models = sys.argv[1], sys.argv[2]
# ggml type id -> (block size, bytes per block)
QT = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
      8: (32, 34), 9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
      14: (256, 210), 15: (256, 292)}
FMT = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: 'B', 10: 'Q', 11: 'q', 12: 'd'}

def s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack('<Q', len(b)) + b

def val(t, v):
    if t == 8:
        return s(v)
    if t == 9:
        et, items = v
        body = b''.join(val(et, x) for x in items)
        return struct.pack('<IQ', et, len(items)) + body
    return struct.pack('<' + FMT[t], v)

def gguf(kvs, tensors, version=3, align=32):
    """kvs: [(key, type, value)]; tensors: [(name, type, ne)]; data is a byte pattern."""
    h = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kvs))
    for k, t, v in kvs:
        h += s(k) + struct.pack('<I', t) + val(t, v)
    off, blobs = 0, []
    for name, t, ne in tensors:
        bs, ts = QT[t]
        n = 1
        for d in ne:
            n *= d
        size = n // bs * ts
        h += s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', d) for d in ne)
        h += struct.pack('<IQ', t, off)
        blobs.append((off, bytes((i * 7 + 3) & 0xff for i in range(size))))
        off = (off + size + align - 1) // align * align
    h += b'\0' * ((-len(h)) % align)
    data = bytearray(off)
    for o, b in blobs:
        data[o:o + len(b)] = b
    end = blobs[-1][0] + len(blobs[-1][1]) if blobs else 0
    return h + bytes(data[:end])

def put(name, blob):
    with open(os.path.join(out, name), 'wb') as f:
        f.write(blob)

put('empty-v3.gguf', gguf([], []))
put('empty-v2.gguf', gguf([], [], version=2))
every = [
    ('t.u8', 0, 200), ('t.i8', 1, -5), ('t.u16', 2, 60000), ('t.i16', 3, -300),
    ('t.u32', 4, 4000000000), ('t.i32', 5, -7), ('t.f32', 6, 1.5), ('t.bool', 7, 1),
    ('t.str', 8, 'hello\nworld\x01'), ('t.u64', 10, 2**63), ('t.i64', 11, -2**40),
    ('t.f64', 12, -0.25),
    ('t.arr.u8', 9, (0, [1, 2, 3])), ('t.arr.i16', 9, (3, [-1, 2])),
    ('t.arr.bool', 9, (7, [0, 1, 1])), ('t.arr.f64', 9, (12, [0.5])),
    ('t.arr.str', 9, (8, ['a', '', 'ccc'])), ('t.arr.empty', 9, (5, [])),
    ('t.arr.nested', 9, (9, [(0, [1]), (8, ['x', 'y']), (9, [(4, [7, 8])])])),
    ('t.\u00e9t\u00e9', 8, '\u00fcnicode'),
]
put('every-type.gguf', gguf(every, []))
put('every-type-v2.gguf', gguf(every, [], version=2))
vocab = [
    ('general.architecture', 8, 'llama'), ('general.alignment', 4, 32),
    ('llama.context_length', 4, 64), ('llama.embedding_length', 4, 32),
    ('llama.block_count', 4, 1), ('llama.feed_forward_length', 4, 64),
    ('llama.attention.head_count', 4, 2),
    ('tokenizer.ggml.model', 8, 'gpt2'),
    ('tokenizer.ggml.tokens', 9, (8, ['<s>', '</s>', 'a', 'b', 'ab', ' ', '\u0120a'])),
    ('tokenizer.ggml.scores', 9, (6, [0.0, -1.0, -2.0, -2.5, -3.0, -4.0, -5.0])),
    ('tokenizer.ggml.token_type', 9, (5, [3, 3, 1, 1, 1, 1, 1])),
    ('tokenizer.ggml.merges', 9, (8, ['a b'])),
    ('tokenizer.ggml.bos_token_id', 4, 0), ('tokenizer.ggml.add_bos_token', 7, 1),
]
put('vocab.gguf', gguf(vocab, []))
put('tensors.gguf', gguf(vocab, [
    ('token_embd.weight', 0, [32, 7]), ('a.f16', 1, [8]), ('b.bf16', 30, [2, 2, 2, 2]),
    ('c.q8_0', 8, [32, 2]), ('d.q4_0', 2, [64]), ('e.q4_k', 12, [256]),
    ('f.q6_k', 14, [256, 1, 1])]))
put('tensors-align64.gguf', gguf([('general.alignment', 4, 64)], [
    ('x', 0, [3]), ('y', 1, [5, 3]), ('z', 8, [32])], align=64))

# Miniatures of the fixture models: real keys, names, types and n_dims; one block per tensor.
def rd(f, fmt):
    return struct.unpack('<' + fmt, f.read(struct.calcsize('<' + fmt)))

def rval(f, t):
    if t == 8:
        n, = rd(f, 'Q')
        return f.read(n).decode('utf-8', 'surrogateescape')
    if t == 9:
        et, n = rd(f, 'IQ')
        return (et, [rval(f, et) for _ in range(n)])
    return rd(f, FMT[t])[0]

for path in sorted(glob.glob(os.path.join(models, '*.gguf'))):
    with open(path, 'rb') as f:
        if f.read(4) != b'GGUF':
            continue
        version, = rd(f, 'I')
        nt, nk = rd(f, 'QQ')
        kvs = []
        for _ in range(nk):
            n, = rd(f, 'Q')
            k = f.read(n).decode()
            t, = rd(f, 'I')
            kvs.append((k, t, rval(f, t)))
        tensors = []
        for _ in range(nt):
            n, = rd(f, 'Q')
            name = f.read(n).decode()
            nd, = rd(f, 'I')
            rd(f, 'Q' * nd)
            t, _ = rd(f, 'IQ')
            tensors.append((name, t, [QT[t][0]] + [1] * (nd - 1)))
    align = next((v for k, t, v in kvs if k == 'general.alignment'), 32)
    blob = gguf([(k, t, v.encode('utf-8', 'surrogateescape') if t == 8 else v)
                 for k, t, v in kvs], tensors, version=version, align=align)
    if len(blob) <= 65536:
        put('mini-' + os.path.basename(path), blob)
PY
echo "seeded $(ls "$dir" | wc -l) files into $dir"
