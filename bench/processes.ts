// processes.ts — `forkbox bench processes [-n N] [--json]`: what a guest process costs,
// each figure beside the host doing the same in the same run (these machines are noisy):
// os.fork() + a child that writes and exits, waited for (the script of src/cli/host-fork.ts,
// run in a fork and on the host python3), a ProcessPoolExecutor(4) started and mapped over
// 200 small tasks, and the host memory each live child holds (this process's PSS and the
// host's MemAvailable while 8 children sleep). Prints targets beside results and never fails
// on a number.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { setLogLevel } from '../src/lib/log.js';
import { createEngine, type ForkboxEngine } from '../src/engine/index.js';
import { HOST_FORK_PY } from '../src/cli/host-fork.js';
import { dist, pssKiB, r2, usedKiB } from './session.js';

const times = (stderr: string): number[] => {
  const line = stderr.trim().split('\n').pop() ?? '';
  return line.split(/\s+/).map(Number).filter((x) => Number.isFinite(x) && x > 0).map((x) => x / 1e6);
};

const POOL_PY = `
import concurrent.futures as cf, multiprocessing as mp, time
def f(x): return x * x
t0 = time.perf_counter()
with cf.ProcessPoolExecutor(4, mp_context=mp.get_context("fork")) as ex:
    t1 = time.perf_counter()
    assert sum(ex.map(f, range(200))) == sum(x * x for x in range(200))
t2 = time.perf_counter()
print(f"{(t2 - t0) * 1e3:.3f}")
`;

async function guest(engine: ForkboxEngine, code: string, timeoutSeconds = 120): Promise<{ stdout: string; stderr: string }> {
  const r = await engine.exec({ code, language: 'python', timeoutSeconds });
  if (r.exitCode !== 0) throw new Error(`exec failed (${r.outcome} ${r.exitCode}): ${r.stderr.slice(-2000)}`);
  return r;
}

export async function runProcessBench(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { n: { type: 'string', short: 'n' }, json: { type: 'boolean' } } });
  const n = values.n ? Number(values.n) : 200;
  if (!Number.isInteger(n) || n < 1) { process.stderr.write('forkbox bench processes: -n takes a positive integer\n'); return 2; }
  if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
  const engine = await createEngine({});
  try {
    await engine.ready();
    const rows: { name: string; value: string; target?: string }[] = [];
    const json: Record<string, unknown> = { bench: 'processes', n, time: new Date().toISOString() };

    // 1. fork + child writes + exit + waitpid, in a fork and on the host
    const g = await guest(engine, `import sys\nsys.argv = ["x", "${n}", "numpy"]\n${HOST_FORK_PY}`);
    const gd = dist(times(g.stderr));
    const h = spawnSync('python3', ['-c', HOST_FORK_PY, String(n), 'numpy'], { encoding: 'utf8' });
    const hd = dist(times(h.stderr ?? ''));
    rows.push({ name: 'os.fork() + child write + exit + waitpid, in a fork (numpy loaded)', value: `p50 ${r2(gd.p50)} ms  p99 ${r2(gd.p99)} ms  (n ${gd.n})` });
    rows.push({ name: 'the same on the host python3 (no isolation)', value: `p50 ${r2(hd.p50)} ms  p99 ${r2(hd.p99)} ms  (forkbox/host p50 ${r2(gd.p50 / hd.p50)})` });
    json.guestForkMs = gd; json.hostForkMs = hd; json.forkRatioP50 = gd.p50 / hd.p50;

    // 2. a process pool: start, 200 tasks, shut down
    const pool: number[] = [], hostPool: number[] = [];
    for (let i = 0; i < 5; i++) {
      pool.push(Number((await guest(engine, POOL_PY)).stdout.trim()));
      hostPool.push(Number(spawnSync('python3', ['-c', POOL_PY], { encoding: 'utf8' }).stdout.trim()));
    }
    const pd = dist(pool), hp = dist(hostPool);
    rows.push({ name: 'ProcessPoolExecutor(4) start + map 200 tasks + shutdown, in a fork', value: `p50 ${r2(pd.p50)} ms  (host ${r2(hp.p50)} ms, ratio ${r2(pd.p50 / hp.p50)})` });
    json.poolMs = pd; json.hostPoolMs = hp;

    // 3. host memory per live child: 8 children that sleep, sampled while they do
    const kids = 8;
    await new Promise((r) => setTimeout(r, 500));
    const pss0 = pssKiB(), used0 = usedKiB();
    let pss1 = NaN, used1 = NaN;
    const sample = setTimeout(() => { pss1 = pssKiB(); used1 = usedKiB(); }, 2500);
    await guest(engine, `
import os, time
kids = []
for _ in range(${kids}):
    pid = os.fork()
    if pid == 0:
        time.sleep(4)
        os._exit(0)
    kids.append(pid)
for k in kids: os.waitpid(k, 0)
`);
    clearTimeout(sample);
    const perPss = (pss1 - pss0) / kids, perUsed = (used1 - used0) / kids;
    rows.push({ name: `host memory per live child (${kids} sleeping children)`, value: `PSS ${r2(perPss / 1024)} MiB, MemAvailable ${r2(perUsed / 1024)} MiB` });
    json.perChildPssKiB = perPss; json.perChildUsedKiB = perUsed;

    if (values.json) process.stdout.write(JSON.stringify(json, null, 2) + '\n');
    else {
      const w = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) process.stdout.write(`${r.name.padEnd(w)}  ${r.value}${r.target ? `   [target ${r.target}]` : ''}\n`);
    }
    return 0;
  } finally {
    await engine.close(1000);
  }
}
