#!/usr/bin/env python3
# mkimage.py — test-only packer for image.h images (the product's packer is
# src/image/). Usage: mkimage.py OUT SPEC...   where SPEC is
#   /guest/path=HOSTPATH      a file or (recursively) a directory
#   /guest/path@=TARGET       a symlink
#   /guest/path!=HOSTPATH     a file whose `syscall` instructions are rewritten
#                             to `call *%rax` (found with objdump, not by bytes)
import hashlib, os, struct, subprocess, sys, time

MAGIC, VERSION = 0x31474d4958424b46, 1
S_IFDIR, S_IFREG, S_IFLNK = 0o040000, 0o100000, 0o120000

def rewrite(data, path):
    out = subprocess.run(['objdump', '-d', '--no-show-raw-insn', path], capture_output=True, text=True, check=True).stdout
    hdr = subprocess.run(['readelf', '-lW', path], capture_output=True, text=True, check=True).stdout
    loads = []
    for line in hdr.splitlines():
        f = line.split()
        if f and f[0] == 'LOAD':
            loads.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))  # vaddr, offset, filesz
    buf, n = bytearray(data), 0
    for line in out.splitlines():
        f = line.strip().split('\t')
        if len(f) >= 2 and f[-1].strip() == 'syscall':
            va = int(f[0].rstrip(':'), 16)
            off = next(o + va - v for v, o, s in loads if v <= va < v + s)
            assert buf[off:off + 2] == b'\x0f\x05', hex(va)
            buf[off:off + 2] = b'\xff\xd0'
            n += 1
    assert n > 0, path
    return bytes(buf)

def main():
    out, specs = sys.argv[1], sys.argv[2:]
    tree = {'': ('d', 0o755, None)}
    def add_parents(p):
        parts = p.strip('/').split('/')
        for i in range(1, len(parts)):
            tree.setdefault('/' + '/'.join(parts[:i]), ('d', 0o755, None))
    def add(gp, hp, rw=False):
        add_parents(gp)
        if os.path.islink(hp) and not rw:
            tree[gp] = ('l', 0o777, os.readlink(hp).encode())
        elif os.path.isdir(hp):
            tree[gp] = ('d', os.stat(hp).st_mode & 0o7777, None)
            for name in sorted(os.listdir(hp)):
                add(gp + '/' + name, os.path.join(hp, name))
        else:
            data = open(hp, 'rb').read()
            if rw:
                data = rewrite(data, hp)
            tree[gp] = ('f', os.stat(hp).st_mode & 0o7777, data)
    for s in specs:
        if '@=' in s:
            gp, t = s.split('@=', 1); add_parents(gp); tree[gp] = ('l', 0o777, t.encode())
        elif '!=' in s:
            gp, hp = s.split('!=', 1); add(gp, hp, True)
        else:
            gp, hp = s.split('=', 1); add(gp, hp)
    children = {}
    for p in tree:
        if p:
            children.setdefault(p.rsplit('/', 1)[0], []).append(p)
    order, index, q = [''], {'': 0}, ['']
    first = {}
    while q:
        d = q.pop(0)
        kids = sorted(children.get(d, []), key=lambda p: p.rsplit('/', 1)[1].encode())
        first[d] = len(order)
        for k in kids:
            index[k] = len(order); order.append(k)
            if tree[k][0] == 'd':
                q.append(k)
    names = bytearray()
    ents = []
    entries_off = 4096
    names_off = entries_off + 48 * len(order)
    name_pos = {}
    for p in order:
        nm = p.rsplit('/', 1)[1].encode() if p else b''
        name_pos[p] = (len(names), len(nm)); names += nm
    data_off = (names_off + len(names) + 4095) & ~4095
    blobs, cur = [], data_off
    placed = {}
    for p in order:
        t, mode, data = tree[p]
        if t in 'fl':
            placed[p] = cur; blobs.append((cur, data)); cur = (cur + len(data) + 4095) & ~4095
    size = cur
    img = bytearray(size)
    for p in order:
        t, mode, data = tree[p]
        no, nl = name_pos[p]
        typ = {'d': S_IFDIR, 'f': S_IFREG, 'l': S_IFLNK}[t]
        kids = children.get(p, []) if t == 'd' else []
        parent = index[p.rsplit('/', 1)[0]] if p else 0
        img[entries_off + 48 * index[p]: entries_off + 48 * index[p] + 48] = struct.pack(
            '<IIIIQQQII', no, nl, typ | mode, len(kids), first.get(p, 0) if kids else 0,
            placed.get(p, 0), len(data) if data is not None else 0, parent, 0)
    img[names_off:names_off + len(names)] = names
    for off, data in blobs:
        img[off:off + len(data)] = data
    hdr = struct.pack('<QIIQQQQQQQ', MAGIC, VERSION, 4096, size, len(order), entries_off, names_off, len(names), data_off, int(time.time()))
    img[0:len(hdr)] = hdr
    img[len(hdr):len(hdr) + 32] = hashlib.sha256(bytes(img)).digest()
    with open(out + '.tmp', 'wb') as f:
        f.write(img)
    os.rename(out + '.tmp', out)

main()
