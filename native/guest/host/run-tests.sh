#!/bin/sh
# run-tests.sh OUT — the guest runtime's tests: host unit tests, then the
# harness (runtime in a host process) with the static test program and, when
# a built python image exists in the cache, python3 + numpy. The harness maps
# page 0, so vm.mmap_min_addr is set to 0 for the run and restored after.
set -eu
OUT=${1:-out}
H=guest/host
T=$(mktemp -d)
OLD_MIN=""
cleanup() {
    [ -n "$OLD_MIN" ] && sysctl -qw vm.mmap_min_addr="$OLD_MIN" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL guest: $*"; exit 1; }

mkdir -p "$T/tmp"
printf 'hi from image\n' > "$T/hello.txt"
python3 $H/mkimage.py "$T/unit.img" /etc/hello.txt="$T/hello.txt" /etc/passwd="$T/hello.txt" \
    /etc/other.txt="$T/hello.txt" /etc/stamp.txt="$T/hello.txt" /etc/linkme.txt="$T/hello.txt" /etc/link@=/ /etc/loop@=/etc/loop /tmp="$T/tmp"
"$OUT/guest-unit" "$T/unit.img"
"$OUT/guest-unit-mm"
"$OUT/guest-unit-ipc"
"$OUT/guest-unit-shm"

python3 $H/mkimage.py "$T/static.img" /bin/test-static="$OUT/test-static" /etc/hello.txt="$T/hello.txt" \
    /etc/passwd="$T/hello.txt" /etc/link@=/ /tmp="$T/tmp"

# serialize with any concurrent run so the saved value is the machine's own
if command -v flock >/dev/null 2>&1; then exec 9>"${TMPDIR:-/tmp}/forkbox-guest-tests.lock"; flock 9; fi
OLD_MIN=$(cat /proc/sys/vm/mmap_min_addr)
if [ "$OLD_MIN" != 0 ] && ! sysctl -qw vm.mmap_min_addr=0 2>/dev/null; then
    OLD_MIN=""
    echo "skipped: guest harness tests (cannot set vm.mmap_min_addr=0 to map guest page 0)"
    exit 0
fi
FB="$OUT/fb-host --runtime $OUT/runtime.elf --quiet"

# static program: boot checks, then requests; two forks-worth of requests get different randomness
$FB --request "echo abc" --request rand --request rand --request "sleep 100" --request "exit 7" \
    "$T/static.img" /bin/test-static arg1 > "$T/s.out" 2>&1 && rc=0 || rc=$?
[ "$rc" = 7 ] || { cat "$T/s.out"; fail "static: exit code $rc, want 7"; }
grep -q '^hello from static$' "$T/s.out" || fail "static: no start-up output"
grep -q '^hi from image$' "$T/s.out" || fail "static: image file not read"
grep -q 'FAIL' "$T/s.out" && { cat "$T/s.out"; fail "static: self-check failed"; }
R1=$(grep -A1 '^#result 16' "$T/s.out" | sed -n 2p); R2=$(grep -A1 '^#result 16' "$T/s.out" | sed -n 5p)
[ -n "$R1" ] && [ "$R1" != "$R2" ] || fail "static: getrandom repeated ($R1 / $R2)"
MS=$(grep -A1 '^#result 3' "$T/s.out" | sed -n 2p)
[ "$MS" -ge 100 ] && [ "$MS" -lt 300 ] || fail "static: sleep 100 ms took $MS ms"
grep -q 'status=EXIT exit=7' "$T/s.out" || fail "static: no EXIT status"
# memory limit from the request: a 64 MiB mapping fails with ENOMEM, the guest goes on
$FB --mem-limit $((24 << 20)) --request limit --request "echo ok" "$T/static.img" /bin/test-static arg1 > "$T/l.out" 2>&1 || true
grep -A1 '^#result 1' "$T/l.out" | sed -n 2p | grep -qx 1 || { cat "$T/l.out"; fail "limit: mmap over mem_limit did not fail"; }
grep -q 'seq=2 status=DONE' "$T/l.out" || fail "limit: guest did not go on"
# an invalid mailbox header is refused with FB_ST_ERROR, the guest then serves the next request;
# stdout beyond the host's cap is dropped and flagged
$FB --out-cap 4 --bad-request "echo no" --request "echo 123456789" "$T/static.img" /bin/test-static arg1 > "$T/b.out" 2>&1 || true
grep -q 'status=ERROR' "$T/b.out" && grep -q 'invalid mailbox header' "$T/b.out" || { cat "$T/b.out"; fail "bad request not refused"; }
grep -q 'seq=2 status=DONE exit=0 .* flags=1$' "$T/b.out" || { cat "$T/b.out"; fail "no DONE with FB_OUT_TRUNCATED after a bad request"; }
grep -A1 '^#stdout 4$' "$T/b.out" | grep -qx 1234 || { cat "$T/b.out"; fail "stdout not cut at out_cap"; }
# file requests are answered by the runtime itself (the program's read() never sees them):
# write with parents through "..", the program reads it, read it back, garbage gets an errno
python3 - "$T" <<'PY'
import struct, sys
t = sys.argv[1]
def req(path, data=b'', flags=0):
    p = path.encode()
    return struct.pack('<IIQQIIQ16x', flags, 0, 0, len(data), len(p), 0, 0) + p + data
open(t + '/fw.req', 'wb').write(req('/../../tmp/up/x.txt', b'uploaded\n', flags=8))
open(t + '/fr.req', 'wb').write(req('/tmp/up/x.txt'))
open(t + '/fg.req', 'wb').write(b'garbage')
PY
$FB --kind 16 --request-file "$T/fw.req" --request "cat /tmp/up/x.txt" --kind 17 --request-file "$T/fr.req" \
    --kind 21 --request-file "$T/fg.req" --request "echo after" "$T/static.img" /bin/test-static arg1 > "$T/fq.out" 2>&1 \
    || { cat "$T/fq.out"; fail "file requests: the guest failed"; }
[ "$(grep -c '^#result 80$' "$T/fq.out")" = 3 ] || { cat "$T/fq.out"; fail "file requests: not answered by the runtime"; }
[ "$(grep -c '^uploaded$' "$T/fq.out")" = 2 ] || { cat "$T/fq.out"; fail "file requests: written file not seen"; }
grep -q 'seq=5 status=DONE' "$T/fq.out" && grep -qx after "$T/fq.out" || { cat "$T/fq.out"; fail "file requests: program did not go on"; }
# a missing program is reported as a runtime error, not a host crash
$FB "$T/static.img" /bin/nope > "$T/e.out" 2>&1 && rc=0 || rc=$?
[ "$rc" = 3 ] && grep -q 'cannot load the program' "$T/e.out" || { cat "$T/e.out"; fail "missing program: rc $rc"; }
echo "guest: static harness tests ok"

IMG=${FORKBOX_PYTHON_IMAGE:-}
if [ -z "$IMG" ]; then
    CACHE=${FORKBOX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/forkbox}
    # the newest python image (other languages' images sit beside it)
    IMG=$(for m in $(ls -t "$CACHE"/images/*/manifest.json 2>/dev/null); do
              grep -q '"recipe": "python"' "$m" && { echo "${m%manifest.json}image.fbimg"; break; }
          done || true)
fi
if [ -z "$IMG" ] || [ ! -f "$IMG" ]; then
    echo "skipped: python harness tests (no built python image in the cache; build one with the image builder)"
    exit 0
fi
$FB --env LANG=C.UTF-8 "$IMG" /usr/bin/python3.11 -I -B -c 'import numpy; print(1+1); print(numpy.arange(4).sum())' > "$T/p.out" 2>&1 || { cat "$T/p.out"; fail "python: failed"; }
grep -q '^2$' "$T/p.out" && grep -q '^6$' "$T/p.out" || { cat "$T/p.out"; fail "python: wrong output"; }
$FB --env LANG=C.UTF-8 --request '{"code":"print(6*7)"}' --request '{"code":"import threading; t=threading.Thread(target=print, args=(\"from thread\",)); t.start(); t.join()"}' \
    --request '{"code":"import time; t=time.monotonic(); time.sleep(0.05); print(time.monotonic()-t >= 0.05)"}' \
    "$IMG" /usr/bin/python3.11 -I -B /opt/forkbox/runner.py --preload numpy,json > "$T/r.out" 2>&1 || { cat "$T/r.out"; fail "runner: failed"; }
grep -q '^42$' "$T/r.out" || { cat "$T/r.out"; fail "runner: no 42"; }
grep -q '^from thread$' "$T/r.out" || { cat "$T/r.out"; fail "runner: a thread did not run"; }
grep -q '^True$' "$T/r.out" || { cat "$T/r.out"; fail "runner: sleep"; }
# asyncio: epoll + its socketpair self-pipe
$FB "$IMG" /usr/bin/python3.11 -I -B -c 'import asyncio
async def f(x):
    await asyncio.sleep(0.02)
    return x * 2
async def main():
    print(await asyncio.gather(f(1), f(2)))
asyncio.run(main())' > "$T/a.out" 2>&1 || { cat "$T/a.out"; fail "asyncio: failed"; }
grep -qx '\[2, 4\]' "$T/a.out" || { cat "$T/a.out"; fail "asyncio: wrong output"; }
# threads (sched.c): futex handoffs, blocking pipe reads, select and timed waits across threads,
# numpy in every thread, then a deadlock that must end with a clear error
$FB "$IMG" /usr/bin/python3.11 -I -B -c 'import threading, queue, os, select, time
import numpy as np
q = queue.Queue(); r, w = os.pipe(); out = []
def worker(k):
    a = np.arange(64.0) * k
    for _ in range(20):
        q.put(k); time.sleep(0)
    out.append(float(a.sum()))
ts = [threading.Thread(target=worker, args=(k,)) for k in range(1, 4)]
for t in ts: t.start()
n = sum(q.get() for _ in range(60))
for t in ts: t.join()
threading.Thread(target=lambda: (time.sleep(0.01), os.write(w, b"x"))).start()
print(n, sorted(out), os.read(r, 1), select.select([r], [], [], 0.02)[0], threading.Event().wait(0.01))' > "$T/t.out" 2>&1 \
    || { cat "$T/t.out"; fail "threads: failed"; }
grep -qx "120 \[2016.0, 4032.0, 6048.0\] b'x' \[\] False" "$T/t.out" || { cat "$T/t.out"; fail "threads: wrong output"; }
$FB "$IMG" /usr/bin/python3.11 -I -B -c 'import threading
go = threading.Event()
a = threading.Thread(target=lambda: (go.wait(), b.join())); b = threading.Thread(target=lambda: (go.wait(), a.join()))
a.start(); b.start(); go.set(); a.join()' > "$T/d.out" 2>&1 && rc=0 || rc=$?
[ "$rc" != 0 ] && grep -q 'forkbox: deadlock: 3 thread' "$T/d.out" || { cat "$T/d.out"; fail "threads: deadlock not reported (rc $rc)"; }
# POSIX fidelity (host/posix.py) through the runner as a session's two steps: the second
# imports a module the first wrote after its directory had been scanned
python3 -c 'import json, sys; open(sys.argv[2], "w").write(json.dumps({"code": open(sys.argv[1]).read(), "session": True}))' \
    $H/posix.py "$T/posix.req"
$FB --env LANG=C.UTF-8 --request-file "$T/posix.req" --request '{"code":"import m_later; print(\"later\", m_later.C)","session":true}' \
    "$IMG" /usr/bin/python3.11 -I -B /opt/forkbox/runner.py > "$T/px.out" 2>&1 || { cat "$T/px.out"; fail "posix: failed"; }
grep -qx 'posix ok' "$T/px.out" && grep -qx 'later 3' "$T/px.out" || { cat "$T/px.out"; fail "posix: wrong output"; }
# shared writable file mappings (host/shmap.py)
$FB "$IMG" /usr/bin/python3.11 -I -B -c "$(cat $H/shmap.py)" > "$T/sm.out" 2>&1 || { cat "$T/sm.out"; fail "shmap: failed"; }
grep -qx 'shmap ok' "$T/sm.out" || { cat "$T/sm.out"; fail "shmap: wrong output"; }
# processes: a host that serves none answers every call ENOSYS (fork says so; wait and
# kill find no other process); with --processes the harness serves them (host/procs.py)
$FB "$IMG" /usr/bin/python3.11 -I -B -c 'import os
try: os.fork(); print("forked")
except OSError as e: print("fork", e.errno)
try: os.waitpid(-1, 0)
except ChildProcessError as e: print("wait", e.errno)
try: os.kill(1000, 0)
except ProcessLookupError as e: print("kill", e.errno)' > "$T/pn.out" 2>&1 || { cat "$T/pn.out"; fail "no processes: failed"; }
[ "$(grep -v '^#' "$T/pn.out" | tr '\n' ' ')" = "fork 38 wait 10 kill 3 " ] || { cat "$T/pn.out"; fail "no processes: wrong output"; }
python3 -c 'import json, sys; open(sys.argv[2], "w").write(json.dumps({"code": open(sys.argv[1]).read()}))' \
    $H/procs.py "$T/procs.req"
$FB --processes --env LANG=C.UTF-8 --request-file "$T/procs.req" "$IMG" /usr/bin/python3.11 -I -B /opt/forkbox/runner.py \
    > "$T/pr.out" 2>&1 || { cat "$T/pr.out"; fail "processes: failed"; }
grep -qx 'procs ok' "$T/pr.out" && ! grep -q '^FAIL' "$T/pr.out" || { cat "$T/pr.out"; fail "processes: wrong output"; }
# execve chains in one VM, /dev/shm and POSIX semaphores (host/exec.py; it writes itself to /tmp)
python3 -c 'import json, sys; src = open(sys.argv[1]).read(); open(sys.argv[2], "w").write(json.dumps({"code": "SRC = %r\n" % src + src}))' \
    $H/exec.py "$T/exec.req"
$FB --env LANG=C.UTF-8 --request-file "$T/exec.req" "$IMG" /usr/bin/python3.11 -I -B /opt/forkbox/runner.py \
    > "$T/ex.out" 2>&1 || { cat "$T/ex.out"; fail "exec: failed"; }
grep -qx 'exec ok' "$T/ex.out" && ! grep -q '^FAIL' "$T/ex.out" || { cat "$T/ex.out"; fail "exec: wrong output"; }
$FB "$IMG" /usr/bin/python3.11 -I -B -c "$(cat $H/fuzz-syscalls.py)" > "$T/f.out" 2>&1 || { cat "$T/f.out"; fail "syscall fuzz: the guest died"; }
grep -q '^fuzz [0-9]* calls .* alive$' "$T/f.out" || { cat "$T/f.out"; fail "syscall fuzz: no result"; }
echo "guest: python harness tests ok ($IMG)"
