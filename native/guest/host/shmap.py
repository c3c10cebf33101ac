# shmap.py — shared writable file mappings (shmap.c) checked from python3 in
# the harness: flush, write-back at close and exit-free paths, read/write
# coherence with the VFS, no growth past EOF, resize, partial munmap and
# msync via libc, the table bound, and EACCES for a read-only descriptor.
import ctypes, mmap, os, errno

P = '/tmp/shmap.bin'
PG = mmap.PAGESIZE
def data(): return open(P, 'rb').read()
def fresh(n, b=b'\0'):
    with open(P, 'wb') as f: f.write(b * n)

fresh(3 * PG)
with open(P, 'r+b') as f:
    m = mmap.mmap(f.fileno(), 3 * PG)
    m[0:5] = b'hello'; m.flush()
    assert data()[:5] == b'hello', 'flush'
    m[100:105] = b'world'
    assert data()[100:105] == b'world', 'read sees the mapping'
    assert os.stat(P).st_size == 3 * PG
    os.pwrite(f.fileno(), b'XYZ', 300)
    assert m[300:303] == b'XYZ', 'the mapping sees write()'
    m[0:1] = b'H'; os.pwrite(f.fileno(), b'q', 1)
    assert data()[:2] == b'Hq', 'write() after a mapping write keeps both'
    m.resize(4 * PG)
    m[4 * PG - 1] = 0x41
    m.close()
assert data()[4 * PG - 1:] == b'A' and len(data()) == 4 * PG, 'resize'

fresh(PG)
with open(P, 'r+b') as f:
    m = mmap.mmap(f.fileno(), 0)
m[7:9] = b'ok'
m.close()
assert data()[7:9] == b'ok', 'close of the mapping after close of the file'

fresh(100, b'q')
with open(P, 'r+b') as f:
    m = mmap.mmap(f.fileno(), 100)
    m[99:100] = b'Z'
    m.close()
assert data() == b'q' * 99 + b'Z', 'past EOF is not persisted, size kept'

# libc: a partial munmap writes back and keeps the rest; msync(MS_SYNC)
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
fresh(4 * PG)
fd = os.open(P, os.O_RDWR)
a = libc.mmap(None, 4 * PG, 3, 1, fd, 0)
assert a and a != ctypes.c_void_p(-1).value
for i in range(4): ctypes.memset(a + i * PG, 0x61 + i, 1)
assert libc.munmap(a + PG, PG) == 0
assert data()[PG] == 0x62, 'partial munmap wrote back its page'
ctypes.memset(a, 0x41, 1); ctypes.memset(a + 3 * PG, 0x44, 1)
assert libc.msync(a + 2 * PG, 2 * PG, 4) == 0 and libc.msync(a, PG, 1) == 0
assert libc.msync(a, PG, 5) == -1 and ctypes.get_errno() == errno.EINVAL
d = data()
assert d[0] == 0x41 and d[2 * PG] == 0x63 and d[3 * PG] == 0x44, 'the pieces either side stay mapped'
assert libc.munmap(a, 4 * PG) == 0
# a bounded table: past 256 mappings, ENOMEM; freeing one makes room
maps = []
while True:
    r = libc.mmap(None, PG, 3, 1, fd, 0)
    if r == ctypes.c_void_p(-1).value: break
    maps.append(r)
    assert len(maps) <= 256
assert len(maps) == 256 and ctypes.get_errno() == errno.ENOMEM, (len(maps), ctypes.get_errno())
assert libc.munmap(maps.pop(), PG) == 0
r = libc.mmap(None, PG, 3, 1, fd, 0); assert r != ctypes.c_void_p(-1).value; maps.append(r)
for r in maps: libc.munmap(r, PG)
os.close(fd)
ro = os.open(P, os.O_RDONLY)
try: mmap.mmap(ro, 0, access=mmap.ACCESS_WRITE); raise AssertionError('read-only fd mapped shared writable')
except PermissionError: pass
os.close(ro)
# MAP_SHARED | MAP_ANONYMOUS (recorded for a fork to share) behaves as memory, and leaves the table
for _ in range(300):
    m = mmap.mmap(-1, 2 * PG)
    m[0:3] = b'abc'; m[PG:PG + 1] = b'x'
    assert m[0:3] == b'abc' and m[PG] == 0x78
    m.close()
print('shmap ok')
