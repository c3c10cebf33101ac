# procs.py — run inside the guest under `fb-host --processes` (each guest process a
# host process): fork, pids, wait4/waitid, kill between processes, signals that end a
# child, fork from a thread, the clone flags served and refused, fork + execve. The
# harness serves no pipes across processes (a fork with one open fails ENOSYS there):
# test/e2e/processes.test.ts covers them on the real host side. Prints "procs ok".
import ctypes, os, signal, struct, threading, time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(*a):
    r = libc.syscall(*[ctypes.c_long(x) for x in a])
    return r if r >= 0 else -ctypes.get_errno()
def check(what, cond):
    if not cond:
        print("FAIL", what, flush=True)
        os._exit(1)

check("first pid", (os.getpid(), os.getppid()) == (2, 1))
r = os.fork()
if r == 0:
    os._exit(7 if (os.getppid(), threading.get_native_id()) == (2, os.getpid()) else 1)
check("child pid", r >= 1000 and r % 1000 == 0)
pid, st = os.waitpid(r, 0)
check("exit status", pid == r and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 7)
try:
    os.waitpid(-1, os.WNOHANG)
    check("ECHILD after the last", False)
except ChildProcessError:
    pass

# a sleeping child ends at once by SIGTERM (its default action), another by SIGKILL
t0 = time.monotonic()
for sig in (signal.SIGTERM, signal.SIGKILL):
    r = os.fork()
    if r == 0:
        time.sleep(20)
        os._exit(0)
    time.sleep(0.02)
    os.kill(r, sig)
    pid, st = os.waitpid(r, 0)
    check("killed by %d" % sig, os.WIFSIGNALED(st) and os.WTERMSIG(st) == sig)
check("kills were prompt", time.monotonic() - t0 < 5)

# signals both ways: the child pauses for SIGUSR1, then sends SIGUSR2 to its parent
got = []
signal.signal(signal.SIGUSR2, lambda s, f: got.append(s))
r = os.fork()
if r == 0:
    signal.signal(signal.SIGUSR1, lambda s, f: None)
    signal.pause()
    os.kill(os.getppid(), signal.SIGUSR2)
    os._exit(3)
time.sleep(0.02)
os.kill(r, signal.SIGUSR1)
pid, st = os.waitpid(r, 0)
for _ in range(100):
    if got:
        break
    time.sleep(0.01)
check("pause and signal back", os.WEXITSTATUS(st) == 3 and got == [signal.SIGUSR2])

# waitid: WNOHANG before the end, the siginfo after it; a child's own SIGABRT
r = os.fork()
if r == 0:
    time.sleep(0.1)
    os._exit(5)
check("waitid nohang", os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG) is None)
si = os.waitid(os.P_PID, r, os.WEXITED)
check("waitid", si.si_pid == r and si.si_code == os.CLD_EXITED and si.si_status == 5)
r = os.fork()
if r == 0:
    os.kill(os.getpid(), signal.SIGABRT)
    os._exit(0)
si = os.waitid(os.P_ALL, 0, os.WEXITED)
check("waitid killed", si.si_pid == r and si.si_code == os.CLD_KILLED and si.si_status == signal.SIGABRT)

# a timer signal during a blocking wait4 (retried by Python), then the child's status
signal.signal(signal.SIGALRM, lambda s, f: got.append(s))
signal.setitimer(signal.ITIMER_REAL, 0.03)
r = os.fork()
if r == 0:
    time.sleep(0.2)
    os._exit(9)
check("wait across a signal", os.WEXITSTATUS(os.waitpid(r, 0)[1]) == 9 and signal.SIGALRM in got)

# fork from a second thread while a third waits: the child has one thread, tid = pid,
# and its new threads get the tids after its pid
ev = threading.Event()
th = threading.Thread(target=ev.wait)
th.start()
res = []
def forker():
    r = os.fork()
    if r == 0:
        ok = threading.active_count() == 1 and threading.get_native_id() == os.getpid()
        tids = []
        t = threading.Thread(target=lambda: tids.append(threading.get_native_id()))
        t.start()
        t.join()
        os._exit(0 if ok and tids == [os.getpid() + 1] else 1)
    res.append(os.waitpid(r, 0)[1])
ft = threading.Thread(target=forker)
ft.start()
ft.join()
ev.set()
th.join()
check("fork from a thread", res == [0])

# clone flags: glibc's fork with SETTID, clone3, vfork served; CLONE_VM (posix_spawn) is ENOSYS
check("clone VM", sc(56, 0x100 | 0x4000 | 17, 0, 0, 0, 0) == -38)
check("clone flags", sc(56, 0x200 | 17, 0, 0, 0, 0) == -22 and sc(56, 10, 0, 0, 0, 0) == -22)
try:
    os.posix_spawn("/bin/true", ["true"], {})
    check("posix_spawn", False)
except OSError as e:
    check("posix_spawn ENOSYS", e.errno == 38)
tid, ptid = ctypes.c_uint32(0), ctypes.c_uint32(0)
r = sc(56, 17 | 0x1000000 | 0x100000, 0, ctypes.addressof(ptid), ctypes.addressof(tid), 0)
if r == 0:
    os._exit(0 if tid.value == os.getpid() and ptid.value == 0 else 1)
check("clone settid", r > 0 and ptid.value == r and tid.value == 0 and os.waitpid(r, 0)[1] == 0)
buf = ctypes.create_string_buffer(struct.pack("<8Q", 0, 0, 0, 0, 17, 0, 0, 0), 64)
r = sc(435, ctypes.addressof(buf), 64)
if r == 0:
    os._exit(4)
check("clone3", r > 0 and os.WEXITSTATUS(os.waitpid(r, 0)[1]) == 4)
r = sc(58)
if r == 0:
    os._exit(6)
check("vfork", r > 0 and os.WEXITSTATUS(os.waitpid(r, 0)[1]) == 6)
check("kill others", sc(62, -1, 0) == -3 and sc(62, 123000, 0) == -3 and sc(62, -5, 0) == -3)
check("proc stat", open("/proc/self/stat").read().split()[:6] == ["2", "(python3.11)", "R", "1", "2", "2"])
# fork + execve (what subprocess and multiprocessing's spawn do): the child keeps its pid
import sys
r = os.fork()
if r == 0:
    os.execv(sys.executable, [sys.executable, "-I", "-c", "import os, sys; sys.exit(5 if (os.getpid() % 1000, os.getppid()) == (0, 2) else 1)"])
check("fork and exec", os.WEXITSTATUS(os.waitpid(r, 0)[1]) == 5)
print("procs ok")
