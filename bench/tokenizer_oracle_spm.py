#!/usr/bin/python3
"""Reference run of the real SentencePiece (Debian python3-sentencepiece) on a GGUF SPM vocabulary:
builds a .model protobuf from tokenizer.ggml.tokens/scores/token_type, encodes TEXT in the same
64 KiB documents as bench_tokenizer, prints MB/s and compares with bench_tokenizer's -o ids file.
Usage: tokenizer_oracle_spm.py VOCAB.gguf TEXT IDS.txt"""
import struct
import sys
import time

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb


def gguf_kv(path):
    d = open(path, 'rb').read()
    o = [24]
    n_kv = struct.unpack_from('<Q', d, 16)[0]
    fm = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q',
          11: '<q', 12: '<d'}

    def u(f):
        v = struct.unpack_from(f, d, o[0])[0]
        o[0] += struct.calcsize(f)
        return v

    def s():
        n = u('<Q')
        v = d[o[0]:o[0] + n]
        o[0] += n
        return v

    def val(t):
        if t == 8:
            return s()
        if t == 9:
            at, n = u('<I'), u('<Q')
            return [val(at) for _ in range(n)]
        return u(fm[t])

    kv = {}
    for _ in range(n_kv):
        k = s().decode()
        kv[k] = val(u('<I'))
    return kv


def docs(data, size=64 << 10):
    pos = 0
    while pos < len(data):
        end = min(pos + size, len(data))
        while end < len(data) and data[end - 1] != 10:
            end += 1
        yield data[pos:end]
        pos = end


def main():
    kv = gguf_kv(sys.argv[1])
    m = pb.ModelProto()
    for t, sc, ty in zip(kv['tokenizer.ggml.tokens'], kv['tokenizer.ggml.scores'],
                         kv['tokenizer.ggml.token_type']):
        p = m.pieces.add()
        p.piece = t.decode('utf-8')
        p.score = sc
        p.type = ty
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.unk_id = kv.get('tokenizer.ggml.unknown_token_id', 0)
    m.trainer_spec.bos_id = kv.get('tokenizer.ggml.bos_token_id', 1)
    m.trainer_spec.eos_id = kv.get('tokenizer.ggml.eos_token_id', 2)
    m.trainer_spec.pad_id = -1
    m.normalizer_spec.name = 'identity'
    m.normalizer_spec.add_dummy_prefix = True
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    sp = spm.SentencePieceProcessor(model_proto=m.SerializeToString())
    data = open(sys.argv[2], 'rb').read()
    texts = [d.decode('utf-8') for d in docs(data)]
    best = 1e30
    for _ in range(3):
        t = time.perf_counter()
        out = [sp.encode(x) for x in texts]
        best = min(best, time.perf_counter() - t)
    ours = [list(map(int, line.split())) for line in open(sys.argv[3])]
    same_docs = sum(a == b for a, b in zip(out, ours))
    n_ids = sum(map(len, out))
    diff_ids = 0
    for a, b in zip(out, ours):
        if a != b:
            diff_ids += sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
    print('sentencepiece %s: %.1f MB/s, %d ids; documents identical %d/%d, differing ids %d'
          % (spm.__version__, len(data) / 1e6 / best, n_ids, same_docs, len(out), diff_ids))
    if same_docs != len(out):
        for a, b in zip(out, ours):
            if a != b:
                i = next(k for k in range(min(len(a), len(b))) if a[k] != b[k])
                print('first difference at id %d: sentencepiece %s, ours %s' %
                      (i, a[i:i + 8], b[i:i + 8]))
                break


main()
