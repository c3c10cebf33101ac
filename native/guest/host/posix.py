# posix.py — run inside the guest (python3 in the image) by run-tests.sh: the
# POSIX fidelity items of the runtime, each checked as Linux answers it —
# directory and file timestamps (ns), a module written then imported, FIFOs,
# hard links, statfs/pathconf, priorities, affinity, chown to oneself, signals and
# timers, blocking calls that nothing could satisfy failing instead of hanging.
# Prints "posix ok".
import errno, os, stat, sys, threading, time

fails = []
def check(name, cond):
    if not cond:
        fails.append(name)

def err(f, *a):
    try:
        f(*a)
        return 0
    except OSError as e:
        return e.errno

def section(name, fn):
    try:
        fn()
    except Exception as e:
        fails.append('%s: %s: %s' % (name, type(e).__name__, e))

# directory timestamps move on create, rename and remove: in the overlay and over the image
d = '/tmp/posix-d'
os.mkdir(d)
for base in (d, '/usr/lib/python3.11'):
    m0 = os.stat(base).st_mtime_ns
    p = base + '/fb_new_mod.py'
    open(p, 'w').write('V = 1\n')
    s1 = os.stat(base)
    check('dir mtime on create ' + base, s1.st_mtime_ns > m0 and s1.st_ctime_ns == s1.st_mtime_ns)
    os.rename(p, p + '.x')
    m2 = os.stat(base).st_mtime_ns
    check('dir mtime on rename ' + base, m2 > s1.st_mtime_ns)
    os.unlink(p + '.x')
    check('dir mtime on unlink ' + base, os.stat(base).st_mtime_ns > m2)
m0 = os.stat('/tmp').st_mtime_ns
os.mkdir(d + '/sub'); os.rmdir(d + '/sub')
check('parent of a changed dir unchanged', os.stat('/tmp').st_mtime_ns == m0)

# file timestamps: a write moves mtime and ctime, chmod only ctime, utime sets atime/mtime exactly
f = d + '/f'
open(f, 'w').write('a')
s0 = os.stat(f)
open(f, 'a').write('b')
s1 = os.stat(f)
check('write moves mtime', s1.st_mtime_ns > s0.st_mtime_ns and s1.st_ctime_ns == s1.st_mtime_ns)
os.chmod(f, 0o600)
s2 = os.stat(f)
check('chmod moves ctime only', s2.st_ctime_ns > s1.st_ctime_ns and s2.st_mtime_ns == s1.st_mtime_ns)
os.utime(f, ns=(1_000_000_123, 2_000_000_456))
s3 = os.stat(f)
check('utime', (s3.st_atime_ns, s3.st_mtime_ns) == (1_000_000_123, 2_000_000_456) and s3.st_ctime_ns > s2.st_ctime_ns)
img = os.stat('/usr/lib/python3.11/os.py')
check('image file keeps its build time', img.st_mtime_ns == img.st_ctime_ns == img.st_atime_ns)

# a module written after its directory was scanned is found by the next import
def import_after_write():
    sys.path.insert(0, d)
    open(d + '/m_first.py', 'w').write('A = 1\n')
    import m_first
    open(d + '/m_second.py', 'w').write('B = 2\n')
    try:
        import m_second
        check('import after write', m_second.B == 2)
    except ImportError:
        check('import after write', False)
section('import_after_write', import_after_write)

# hard links in the overlay: two names of one file
def links():
    a, b = d + '/ha', d + '/hb'
    open(a, 'w').write('one')
    os.link(a, b)
    check('link nlink', os.stat(a).st_nlink == 2 and os.path.samefile(a, b))
    open(b, 'a').write('two')
    check('link shares bytes', open(a).read() == 'onetwo')
    os.unlink(a)
    check('link survives unlink', open(b).read() == 'onetwo' and os.stat(b).st_nlink == 1)
    check('link exists', err(os.link, b, d + '/f') == errno.EEXIST)
    check('link of a dir', err(os.link, d, d + '/dl') == errno.EPERM)
    os.link('/usr/lib/python3.11/os.py', d + '/os-link.py')
    check('link of an image file', os.path.samefile('/usr/lib/python3.11/os.py', d + '/os-link.py'))
section('links', links)

# FIFOs in the overlay
def fifos():
    fp = d + '/fifo'
    os.mkfifo(fp)
    check('fifo mode', stat.S_ISFIFO(os.stat(fp).st_mode) and stat.S_ISFIFO(os.lstat(fp).st_mode))
    check('fifo: O_WRONLY|O_NONBLOCK without a reader', err(os.open, fp, os.O_WRONLY | os.O_NONBLOCK) == errno.ENXIO)
    r = os.open(fp, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(fp, os.O_WRONLY)
    os.write(w, b'hey')
    check('fifo data', os.read(r, 10) == b'hey')
    os.close(w)
    check('fifo eof', os.read(r, 10) == b'')
    os.close(r)
    def writer():
        time.sleep(0.01)
        fd = os.open(fp, os.O_WRONLY)
        os.write(fd, b'x')
        os.close(fd)
    t = threading.Thread(target=writer)
    t.start()
    r = os.open(fp, os.O_RDONLY)   # waits for the writer thread
    check('fifo blocking open', os.read(r, 1) == b'x')
    os.close(r)
    t.join()
    check('fifo open nothing can satisfy', err(os.open, fp, os.O_RDONLY) == errno.EDEADLK)
    rw = os.open(fp, os.O_RDWR)
    os.write(rw, b'z')
    check('fifo O_RDWR', os.read(rw, 1) == b'z')
    os.close(rw)
    check('mknod of a device', err(os.mknod, d + '/dev', stat.S_IFCHR | 0o600, os.makedev(1, 3)) == errno.EPERM)
section('fifos', fifos)

# statfs: pathconf and statvfs; a bad descriptor fails
def statfs():
    check('fpathconf bad fd', err(os.fpathconf, 999, 'PC_NAME_MAX') == errno.EBADF)
    check('pathconf', os.pathconf('/', 'PC_NAME_MAX') == 255)
    check('pathconf missing path', err(os.pathconf, '/nope', 'PC_NAME_MAX') == errno.ENOENT)
    sv = os.statvfs('/tmp')
    check('statvfs', sv.f_bsize == 4096 and sv.f_blocks > 0 and 0 < sv.f_bavail <= sv.f_blocks and sv.f_namemax == 255)
    check('fstatvfs', os.fstatvfs(os.open('/', os.O_RDONLY)).f_namemax == 255)
section('statfs', statfs)

# priorities: raising nice is allowed, lowering it is not; other processes do not exist
def priorities():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, base + 1)
    check('setpriority', os.getpriority(os.PRIO_PROCESS, os.getpid()) == base + 1)
    check('setpriority lower', err(os.setpriority, os.PRIO_PROCESS, 0, base) == errno.EACCES)
    check('getpriority other', err(os.getpriority, os.PRIO_PROCESS, 12345) == errno.ESRCH)
section('priorities', priorities)

# affinity: one CPU
def affinity():
    os.sched_setaffinity(0, {0})
    check('setaffinity impossible', err(os.sched_setaffinity, 0, {5}) == errno.EINVAL)
    check('setaffinity empty', err(os.sched_setaffinity, 0, set()) == errno.EINVAL)
section('affinity', affinity)

# chown to one's own uid and gid is allowed; to anyone else, or of root's files, is not
def chown():
    os.chown(f, os.getuid(), os.getgid())
    os.chown(f, -1, -1)
    os.fchown(os.open(f, os.O_RDONLY), os.getuid(), -1)
    check('chown to root', err(os.chown, f, 0, -1) == errno.EPERM)
    check('chown of an image file', err(os.chown, '/usr/lib/python3.11/stat.py', os.getuid(), -1) == errno.EPERM)
section('chown', chown)

# signals: alarm and interval timers reach their handlers; a blocking call is interrupted
# (Python retries it after the handler, PEP 475); a signal sent to ourselves is handled
def signals():
    import signal
    got = []
    r, w = os.pipe()
    signal.signal(signal.SIGALRM, lambda s, f: (got.append(s), os.write(w, b'bar')))
    signal.setitimer(signal.ITIMER_REAL, 0.02)
    check('alarm interrupts a blocking read', os.read(r, 3) == b'bar' and got == [signal.SIGALRM])
    n = [0]
    signal.signal(signal.SIGALRM, lambda s, f: n.__setitem__(0, n[0] + 1))
    signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
    t0 = time.monotonic()
    time.sleep(0.1)
    signal.setitimer(signal.ITIMER_REAL, 0)
    check('interval timer', n[0] >= 5 and time.monotonic() - t0 >= 0.1 and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0))
    check('alarm returns the seconds left', signal.alarm(30) == 0 and signal.alarm(0) == 30)
    signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
    os.kill(os.getpid(), signal.SIGUSR1)
    check('kill to self runs the handler', got[-1] == signal.SIGUSR1)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    signal.raise_signal(signal.SIGUSR1)
    check('blocked: pending', signal.SIGUSR1 in signal.sigpending() and got.count(signal.SIGUSR1) == 1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR1])
    check('unblocked: delivered', got.count(signal.SIGUSR1) == 2 and not signal.sigpending())
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
section('signals', signals)

# a blocking write to a full pipe whose only reader is this thread fails, never waits
r, w = os.pipe()
check('pipe fill', os.write(w, b'x' * 65536) == 65536)
check('full pipe, lone writer', err(os.write, w, b'y') == errno.EAGAIN)
check('empty pipe, lone reader', err(os.read, os.pipe()[0], 1) == errno.EAGAIN)

print('posix ok' if not fails else 'posix FAIL: ' + '; '.join(fails))
# for the next exec of this runner (a session's next step): a module written now
open(d + '/m_later.py', 'w').write('C = 3\n')
