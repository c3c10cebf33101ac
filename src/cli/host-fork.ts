// host-fork.ts — the host baseline the benchmarks print beside forkbox: a
// python3 that imports the given modules, then times os.fork() + a child that
// writes "2" and exits, waited for. argv: count, comma-separated modules. It
// writes "missed=<modules that did not import>" and then the times in ns on stderr.

export const HOST_FORK_PY = `
import os, sys, time
missed = []
for m in sys.argv[2].split(','):
    try:
        __import__(m)
    except Exception:  # a module that needs the image's own paths (matplotlib's data dir): named in the output
        missed.append(m)
sys.stderr.write("missed=" + ",".join(missed) + chr(10))
n = int(sys.argv[1])
ts = []
for i in range(n):
    t0 = time.perf_counter_ns()
    pid = os.fork()
    if pid == 0:
        os.write(1, b"2\\n")
        os._exit(0)
    os.waitpid(pid, 0)
    ts.append(time.perf_counter_ns() - t0)
sys.stderr.write(" ".join(map(str, ts)))
`;
