#!/usr/bin/env python3
"""Builds the tokenizer benchmark texts from files every Debian machine has.
english.txt: /usr/share/common-licenses and the /usr/share/doc copyright/README/changelog texts.
mixed.txt: the same English interleaved with translated messages (Chinese, Japanese, Russian,
Arabic, Hindi, Korean, Greek) from /usr/share/locale/*.mo, C headers from /usr/include and emoji.
Usage: tokenizer_corpus.py OUTDIR [MB]"""
import glob
import gzip
import os
import random
import struct
import sys


def read_text(path):
    try:
        data = gzip.open(path).read() if path.endswith('.gz') else open(path, 'rb').read()
        return data.decode('utf-8')
    except (OSError, UnicodeDecodeError, EOFError):
        return None


def mo_strings(path):
    """msgstr texts of a GNU .mo file."""
    d = open(path, 'rb').read()
    if len(d) < 28:
        return []
    magic = struct.unpack('<I', d[:4])[0]
    e = '<' if magic == 0x950412de else '>'
    n, _, toff = struct.unpack(e + 'III', d[8:20])
    out = []
    for i in range(n):
        ln, off = struct.unpack(e + 'II', d[toff + 8 * i:toff + 8 * i + 8])
        try:
            s = d[off:off + ln].decode('utf-8')
        except UnicodeDecodeError:
            continue
        out.extend(x for x in s.split('\0') if x.strip())
    return out


def english(limit):
    parts, size = [], 0
    files = sorted(glob.glob('/usr/share/common-licenses/*'))
    files += sorted(glob.glob('/usr/share/doc/*/copyright'))
    files += sorted(glob.glob('/usr/share/doc/*/README*'))
    files += sorted(glob.glob('/usr/share/doc/*/changelog*'))
    seen = set()
    for f in files:
        if size >= limit or not os.path.isfile(f):
            continue
        t = read_text(f)
        if not t or hash(t) in seen:
            continue
        seen.add(hash(t))
        parts.append(t)
        size += len(t.encode())
    return ''.join(parts)


def main():
    out = sys.argv[1]
    mb = float(sys.argv[2]) if len(sys.argv) > 2 else 8
    limit = int(mb * 1e6)
    os.makedirs(out, exist_ok=True)
    en = english(limit)
    open(os.path.join(out, 'english.txt'), 'w').write(en)
    rnd = random.Random(1)
    langs = {}
    for lang in ['zh_CN', 'ja', 'ru', 'ar', 'hi', 'ko', 'el']:
        s = []
        for f in sorted(glob.glob('/usr/share/locale/%s/LC_MESSAGES/*.mo' % lang)):
            s.extend(mo_strings(f))
        langs[lang] = s or ['']
    code = []
    for f in sorted(glob.glob('/usr/include/*.h'))[:400]:
        t = read_text(f)
        if t:
            code.append(t)
    emoji = [chr(c) for c in list(range(0x1F600, 0x1F650)) + list(range(0x1F300, 0x1F400))]
    emoji += ['\U0001F468\u200D\U0001F469\u200D\U0001F467', '\U0001F44D\U0001F3FD',
              '\u2764\uFE0F', '\U0001F1EF\U0001F1F5']
    en_lines = en.split('\n')
    parts, size, li, ci = [], 0, 0, 0
    while size < limit:
        kind = rnd.random()
        if kind < 0.30:
            chunk = '\n'.join(en_lines[li:li + 20]) + '\n'
            li = (li + 20) % max(1, len(en_lines) - 20)
        elif kind < 0.80:
            lang = rnd.choice(list(langs))
            chunk = '\n'.join(rnd.choice(langs[lang]) for _ in range(12)) + '\n'
        elif kind < 0.92:
            t = code[ci % len(code)]
            ci += 1
            chunk = t[:4000]
        else:
            chunk = ' '.join(''.join(rnd.choice(emoji) for _ in range(rnd.randint(1, 4)))
                             for _ in range(30)) + '\n'
        parts.append(chunk)
        size += len(chunk.encode())
    open(os.path.join(out, 'mixed.txt'), 'w').write(''.join(parts))


main()
