#!/usr/bin/python3
"""Compare a `tandem logits` output file with a golden file (fixtures README format).
usage: compare_logits.py OURS GOLDEN float|bf16|quant [--gen]
Exits 1 when the logits are outside the fixtures README tolerances (+25%), or, with --gen,
when the greedy continuation leaves the golden one (only the length and the first token are
checked: later tokens may legitimately diverge after a near tie)."""
import struct, sys

def read(path):
    b = open(path, 'rb').read()
    n_pos, n_vocab = struct.unpack_from('<ii', b, 0)
    o = 8 + 4 * n_pos * n_vocab
    logits = struct.unpack_from('<%df' % (n_pos * n_vocab), b, 8)
    (n_gen,) = struct.unpack_from('<i', b, o)
    gen = struct.unpack_from('<%di' % n_gen, b, o + 4)
    if len(b) != o + 4 + 4 * n_gen:
        raise SystemExit('%s: %d trailing bytes' % (path, len(b) - o - 4 - 4 * n_gen))
    return n_pos, n_vocab, logits, list(gen)

ours, gold, cls = sys.argv[1], sys.argv[2], sys.argv[3]
a, b = read(ours), read(gold)
if a[:2] != b[:2]:
    raise SystemExit('shape %s vs golden %s' % (a[:2], b[:2]))
n_pos, n_vocab = b[0], b[1]
la, lb = a[2], b[2]
n = len(lb)
mean = sum(lb) / n
std = (sum((x - mean) ** 2 for x in lb) / n) ** 0.5
diffs = [abs(x - y) for x, y in zip(la, lb)]
rmax, rmean = max(diffs) / std, sum(diffs) / n / std
agree = 0
for t in range(n_pos):
    ra, rb = la[t * n_vocab:(t + 1) * n_vocab], lb[t * n_vocab:(t + 1) * n_vocab]
    agree += ra.index(max(ra)) == rb.index(max(rb))
tol = {'float': (0.006, 0.001, n_pos), 'bf16': (0.03, 0.005, n_pos), 'quant': (0.16, 0.025, n_pos - 2)}[cls]
print('max/std %.5f mean/std %.5f argmax %d/%d' % (rmax, rmean, agree, n_pos))
ok = rmax <= tol[0] * 1.25 and rmean <= tol[1] * 1.25 and agree >= tol[2]
if '--gen' in sys.argv:
    ok = ok and len(a[3]) == len(b[3]) and a[3][:1] == b[3][:1]
    print('greedy ours %s\ngreedy gold %s' % (a[3], b[3]))
sys.exit(0 if ok else 1)
