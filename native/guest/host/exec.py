# exec.py — run inside the guest (one VM, no other process): execve's refusals, then a
# chain of execs — of python3 itself, from the main thread and from another thread while
# others run, of a `#!` script in the overlay — checking what survives (pid, descriptors
# without O_CLOEXEC, ignored signals, the environment) and that the old program's memory
# is given back; then /dev/shm and the POSIX semaphores multiprocessing builds on.
# Prints "exec ok".
import ctypes, os, signal, sys, threading, time

def check(what, cond):
    if not cond:
        print("FAIL", what, flush=True)
        os._exit(1)

stage = int(os.environ.get("FB_STAGE", "0"))
me = os.environ.get("FB_SELF", "/tmp/exec-test.py")
def again(env, via_thread=False, exe=None, argv=None):
    env = dict(env, FB_SELF=me, FB_STAGE=str(stage + 1))
    go = lambda: os.execve(exe or sys.executable, argv or [sys.executable, "-I", "-B", me], env)
    if via_thread:
        threading.Thread(target=go).start()
        time.sleep(30)
        check("exec from a thread", False)
    go()

def errno_of(f):
    try:
        f()
    except OSError as e:
        return e.errno
    return 0

if stage == 0:
    open(me, "w").write(SRC)  # the runner's request defines SRC: this file's text
    check("enoent", errno_of(lambda: os.execv("/nonexistent", ["x"])) == 2)
    check("directory", errno_of(lambda: os.execv("/etc", ["x"])) == 13)
    open("/tmp/x.bin", "wb").write(open(sys.executable, "rb").read(8192))
    os.chmod("/tmp/x.bin", 0o755)
    check("overlay ELF refused", errno_of(lambda: os.execv("/tmp/x.bin", ["x"])) == 13)
    open("/tmp/noexec", "w").write("#!/usr/bin/python3.11\n")
    check("no x bit", errno_of(lambda: os.execv("/tmp/noexec", ["x"])) == 13)
    for n, t in (("/tmp/s1", "#!/tmp/s2\n"), ("/tmp/s2", "#!/usr/bin/python3.11\n"), ("/tmp/s3", "#!/nope/py\n")):
        open(n, "w").write(t)
        os.chmod(n, 0o755)
    check("one script level", errno_of(lambda: os.execv("/tmp/s1", ["x"])) == 40)
    check("missing interpreter", errno_of(lambda: os.execv("/tmp/s3", ["x"])) == 2)
    check("E2BIG", errno_of(lambda: os.execv(sys.executable, ["x", "a" * 200000])) == 7)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    check("EFAULT", libc.syscall(59, ctypes.c_long(0xdeadbeef000), 0, 0) == -1 and ctypes.get_errno() == 14)
    check("execveat flags", libc.syscall(322, -100, sys.executable.encode(), 0, 0, 0x8) == -1 and ctypes.get_errno() == 22)
    keep = os.open("/dev/null", os.O_RDONLY)
    os.set_inheritable(keep, True)
    drop = os.open("/dev/null", os.O_RDONLY)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, lambda *a: None)
    again({"FB_KEEP": str(keep), "FB_DROP": str(drop)})

rss = int(open("/proc/self/stat").read().split()[22]); print("stage", stage, rss, file=sys.stderr, flush=True)
if stage == 1:
    check("pid kept", os.getpid() == 2 and threading.get_native_id() == 2)
    keep, drop = int(os.environ["FB_KEEP"]), int(os.environ["FB_DROP"])
    check("inheritable kept", os.get_inheritable(keep))
    check("cloexec closed", errno_of(lambda: os.fstat(drop)) == 9)
    check("ignored stays ignored", signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN)
    check("handled back to default", signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL)
    check("exe", os.readlink("/proc/self/exe") == "/usr/bin/python3.11")
    ths = [threading.Thread(target=time.sleep, args=(30,), daemon=True) for _ in range(3)]
    for t in ths:
        t.start()
    again({"FB_RSS": str(rss)}, via_thread=True)
if 2 <= stage < 8:
    check("threads gone, tid = pid", threading.active_count() == 1 and threading.get_native_id() == os.getpid())
    check("memory given back (%d -> %d)" % (int(os.environ["FB_RSS"]), rss), rss < int(os.environ["FB_RSS"]) + (1 << 20))
    again({"FB_RSS": os.environ["FB_RSS"]}, via_thread=stage % 2 == 1)
if stage == 8:
    open("/tmp/s4", "w").write("#!/usr/bin/python3.11 -I\nimport os, sys\nos.environ['FB_ARGV'] = repr(sys.argv)\n"
                               "os.execve(sys.executable, [sys.executable, '-I', '-B', os.environ['FB_SELF']], dict(os.environ))\n")
    os.chmod("/tmp/s4", 0o755)
    again({"FB_RSS": os.environ["FB_RSS"]}, exe="/tmp/s4", argv=["ignored", "a1", "a 2"])
check("script argv", eval(os.environ["FB_ARGV"]) == ["/tmp/s4", "a1", "a 2"])

# /dev/shm and the semaphores of multiprocessing (sem_open: create, mmap, link, unlink)
import multiprocessing, multiprocessing.synchronize
check("/dev/shm", os.stat("/dev/shm").st_mode == 0o41777 and "shm" in os.listdir("/dev"))
lock = multiprocessing.Lock()
with lock:
    check("lock held", not lock.acquire(False))
sem = multiprocessing.Semaphore(2)
check("two acquires", sem.acquire(timeout=0.1) and sem.acquire(timeout=0.1))
t0 = time.monotonic()
check("timed out", not sem.acquire(timeout=0.2) and 0.15 < time.monotonic() - t0 < 2)
threading.Timer(0.05, sem.release).start()
t0 = time.monotonic()
check("released by a thread", sem.acquire(timeout=5) and time.monotonic() - t0 < 2)
with open("/dev/shm/x", "w") as f:
    f.write("x")
os.unlink("/dev/shm/x")
check("nothing left", os.listdir("/dev/shm") == [])
print("exec ok")
