#!/usr/bin/python3
"""Compare two GGUF files with an independent reader (../shared/tools/ggufgen.py): same tensor
names, shapes and types; report how many tensors have byte-identical data.
usage: gguf_compare.py A.gguf B.gguf [--min-identical N]   (exit 1 on any mismatch)"""
import os, sys
sys.path.insert(0, os.path.join(os.environ.get('TANDEM_SHARED', '../shared'), 'tools'))
import ggufgen

# (block size, bytes per block) by ggml type id
SIZES = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
         8: (32, 34), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210)}

def load(path):
    r = ggufgen.Reader(path)
    align = r.kv.get('general.alignment', 32)
    start = (r.o + align - 1) // align * align
    out = {}
    for name, dims, ty, off in r.tensors:
        if off % align:
            raise SystemExit('%s: %s offset %d not aligned to %d' % (path, name, off, align))
        n = 1
        for d in dims: n *= d
        bs, ts = SIZES[ty]
        size = n // bs * ts
        if start + off + size > len(r.b):
            raise SystemExit('%s: %s data past the end of the file' % (path, name))
        out[name] = (dims, ty, r.b[start + off:start + off + size])
    return r, out

ra, a = load(sys.argv[1])
rb, b = load(sys.argv[2])
if set(a) != set(b):
    raise SystemExit('tensor names differ: %s' % sorted(set(a) ^ set(b)))
bad = [(n, a[n][:2], b[n][:2]) for n in a if a[n][:2] != b[n][:2]]
if bad:
    raise SystemExit('shape/type differs: %s' % bad[:5])
same = sum(a[n][2] == b[n][2] for n in a)
print('%d tensors, %d byte-identical, file_type %s / %s' % (len(a), same, ra.kv.get('general.file_type'), rb.kv.get('general.file_type')))
if '--min-identical' in sys.argv and same < int(sys.argv[sys.argv.index('--min-identical') + 1]):
    sys.exit(1)
