// bench.ts — `forkbox bench fork|exec [--json] [-n N] [--out FILE]`.
// fork: pooled and cold fork latency beside the bare KVM floor measured in
// the same run, fork+echo round trip, memory per idle fork, 1,000 forks, a
// 1 MiB response. soak: bench/soak.ts (10,000 execs, descriptors/RSS/live
// VMs before and after). exec: fork + exec of print(1+1) with numpy preloaded beside
// a host python3 process and a host os.fork() of a numpy-loaded python; with
// --language javascript, console.log(1+1) on node beside a host `node -e`.
// Prints targets beside results; never fails on a number.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setLogLevel } from '../lib/log.js';
import { repoRoot } from '../lib/paths.js';
import { FB_REQ_ECHO, FB_REQ_EXEC } from '../vmm/abi.js';
import { Pool, Snapshot, benchFloor, probe, setWorkers, type Vm } from '../vmm/vmm.js';
import { buildTestTemplate, listTemplates } from '../template/build.js';
import { languageModule } from '../languages/index.js';
import { createEngine, type ForkboxEngine } from '../engine/index.js';
import { HOST_FORK_PY } from './host-fork.js';

const USAGE = 'usage: forkbox bench fork|exec [--json] [-n N] [--out FILE] [--language python|javascript]\n       forkbox bench soak [-n 10000] [--concurrency 2] [--json]\n       forkbox bench session [-n 200] [--json]\n       forkbox bench processes [-n 200] [--json]\n       forkbox bench templates|exec --template NAME [-n 100] [--json]\n       forkbox bench http [--clients 200] [--duration 20] [--url URL] [--json]\n';

export interface Dist { n: number; p50: number; p99: number; mean: number; min: number; max: number }
export function dist(xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  return { n: s.length, p50: q(0.5), p99: q(0.99), mean: s.reduce((a, b) => a + b, 0) / (s.length || 1), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}
const us = (ns: number): number => Math.round(ns / 100) / 10;
const ms = (x: number): number => Math.round(x * 1000) / 1000;

function meminfo(): { availKiB: number; freeKiB: number } {
  const t = readFileSync('/proc/meminfo', 'utf8');
  const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN);
  return { availKiB: get('MemAvailable'), freeKiB: get('MemFree') };
}
function rssKiB(): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
}

async function waitPool(pool: Pool, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const s = pool.stats();
    if (s.ready >= s.target) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Row = { name: string; value: string; target?: string };

async function benchFork(n: number): Promise<{ json: Record<string, unknown>; rows: Row[] }> {
  setWorkers(2);
  const root = mkdtempSync(join(tmpdir(), 'forkbox-bench-'));
  try {
    const echo = await buildTestTemplate('echo', root);
    const big = await buildTestTemplate('big', root);
    const snap = new Snapshot(echo.memPath, echo.statePath);
    const bigSnap = new Snapshot(big.memPath, big.statePath);
    const ram = snap.ramSize;
    const req = { kind: FB_REQ_ECHO, payload: 'ping', timeoutMs: 5000 };

    // bare floor and cold forks (no pool), interleaved so machine noise hits both alike.
    // The floor's creation part is what a fork waits for: forks are torn down off the
    // request path, the floor's teardown is inside its total.
    const floorTotal: number[] = [];
    const floorCreate: number[] = [];
    const cold: number[] = [];
    for (let i = 0; i < n; i++) {
      const f = benchFloor(ram, 1);
      floorTotal.push(f.total[0]!);
      floorCreate.push(f.create[0]!);
      cold.push((await snap.forkRun(req).done).forkNs);
    }
    const floor = dist(floorTotal);
    const floorC = dist(floorCreate);
    const coldD = dist(cold);

    // pooled forks
    const pool = new Pool(Math.min(n, 256), ram);
    pool.bind(snap);
    const pooled: number[] = [];
    const rtt: number[] = [];
    let done = 0;
    while (done < n) {
      await waitPool(pool, 30_000);
      const batch = Math.min(pool.stats().target, n - done);
      for (let i = 0; i < batch; i++) {
        const t0 = process.hrtime.bigint();
        const r = await snap.forkRun(req, { pool }).done;
        rtt.push(Number(process.hrtime.bigint() - t0));
        pooled.push(r.forkNs);
      }
      done += batch;
    }
    const poolStats = pool.stats();
    const pooledD = dist(pooled);
    const rttD = dist(rtt);

    // memory per idle fork after one echo, 1,000 live forks; and the 1,000-fork wall time
    const N = 1000;
    if (global.gc) global.gc();
    const m0 = meminfo();
    const r0 = rssKiB();
    const t0 = performance.now();
    const live = await Promise.all(Array.from({ length: N }, () => snap.forkRun(req, { destroy: false }).done));
    const wall1000 = performance.now() - t0;
    const m1 = meminfo();
    const r1 = rssKiB();
    const vms = live.map((x) => x.vm).filter((v): v is Vm => v !== null);
    for (const v of vms) v.close();
    const perFork = {
      rssKiB: (r1 - r0) / N, memAvailableKiB: (m0.availKiB - m1.availKiB) / N, memFreeKiB: (m0.freeKiB - m1.freeKiB) / N,
    };

    // 1 MiB response (big guest)
    const bigT: number[] = [];
    for (let i = 0; i < Math.min(n, 100); i++) {
      const t = performance.now();
      const r = await bigSnap.forkRun({ kind: FB_REQ_ECHO, timeoutMs: 5000 }).done;
      bigT.push(performance.now() - t);
      if (r.response.stdout.length !== 1 << 20) throw new Error(`big guest answered ${r.response.stdout.length} bytes`);
    }
    const bigD = dist(bigT);
    pool.close();
    snap.close();
    bigSnap.close();

    const json = {
      bench: 'fork', n, ramSize: ram, time: new Date().toISOString(),
      floorUs: mapD(floor, us), floorCreateUs: mapD(floorC, us), coldForkUs: mapD(coldD, us), pooledForkUs: mapD(pooledD, us), forkEchoRoundTripUs: mapD(rttD, us),
      coldOverFloorP50: coldD.p50 / floor.p50, coldOverFloorCreateP50: coldD.p50 / floorC.p50, pool: poolStats,
      perIdleFork: perFork, thousandForksWallMs: ms(wall1000), oneMiBResponseMs: mapD(bigD, ms),
    };
    const rows: Row[] = [
      { name: 'bare floor (create VM+slot+vCPU, teardown)', value: `p50 ${us(floor.p50)} µs  p99 ${us(floor.p99)} µs` },
      { name: 'bare floor, creation part only', value: `p50 ${us(floorC.p50)} µs  p99 ${us(floorC.p99)} µs` },
      { name: 'pooled fork', value: `p50 ${us(pooledD.p50)} µs  p99 ${us(pooledD.p99)} µs`, target: 'p50 ≤150 µs, p99 ≤600 µs' },
      { name: 'cold fork', value: `p50 ${us(coldD.p50)} µs  p99 ${us(coldD.p99)} µs  (${(coldD.p50 / floor.p50).toFixed(2)}× floor, ${(coldD.p50 / floorC.p50).toFixed(2)}× its creation part)`, target: '≤1.2× floor' },
      { name: 'fork + echo round trip (pooled)', value: `p50 ${us(rttD.p50)} µs  p99 ${us(rttD.p99)} µs` },
      { name: 'memory per idle fork (1,000 live)', value: `RSS ${perFork.rssKiB.toFixed(1)} KiB, MemAvailable ${perFork.memAvailableKiB.toFixed(1)} KiB, MemFree ${perFork.memFreeKiB.toFixed(1)} KiB`, target: '≤150 KiB' },
      { name: '1,000 forks + echo each (no pool, all live)', value: `${ms(wall1000)} ms`, target: '≤2 s' },
      { name: '1 MiB response (fork+run)', value: `p50 ${ms(bigD.p50)} ms  p99 ${ms(bigD.p99)} ms`, target: '≤20 ms' },
    ];
    return { json, rows };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function mapD(d: Dist, f: (x: number) => number): Record<string, number> {
  return { n: d.n, p50: f(d.p50), p99: f(d.p99), mean: f(d.mean), min: f(d.min), max: f(d.max) };
}

async function execSeries(n: number, warmForks: number, paceMs: number, language = 'python', code = 'print(1+1)', recycle = false): Promise<{ total: Dist; fork: Dist; exec: Dist; warm: ReturnType<ForkboxEngine['warmStats']> }> {
  const engine = await createEngine({ poolSize: Math.min(n, 32), warmForks, recycle, templates: [languageModule(language)?.recipe.name ?? 'python'], onProgress: (l) => process.stderr.write(`forkbox: ${l}\n`) });
  try {
    await engine.ready();
    if (warmForks) await new Promise((r) => setTimeout(r, 500)); // let the first forks warm up
    const total: number[] = [];
    const fork: number[] = [];
    const exec: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await engine.exec({ code, language, timeoutSeconds: 10 });
      total.push(performance.now() - t0);
      fork.push(r.forkTimeMs);
      exec.push(r.execTimeMs);
      if (r.stdout !== '2\n') throw new Error(`exec printed ${JSON.stringify(r.stdout)} (stderr ${r.stderr.slice(0, 500)})`);
      if (paceMs) await new Promise((res) => setTimeout(res, paceMs));
    }
    return { total: dist(total), fork: dist(fork), exec: dist(exec), warm: engine.warmStats(language) };
  } finally {
    await engine.close(0);
  }
}

function memAvailableKiB(): number {
  return Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? NaN);
}

function rssAnonKiB(): number {
  return Number(/^RssAnon:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
}

/** Pages a fork writes in its first exec: private (copy-on-write) pages show up as
 *  anonymous RSS of this process. Includes the few mailbox pages the exec touches. */
async function dirtiedPages(forks: number, template = 'python', code = 'print(1+1)'): Promise<{ forks: number; pagesPerFork: number; memAvailableKiBPerFork: number; privateKiBPerFork: number; ramMiB: number }> {
  const t = (await listTemplates()).find((x) => x.name === template);
  if (!t) throw new Error(`no ${template} template`);
  const snap = new Snapshot(t.memPath, t.statePath);
  const payload = JSON.stringify({ code, env: {}, stdin: '' });
  try {
    const before = rssAnonKiB();
    const availBefore = memAvailableKiB();
    const live: Vm[] = [];
    for (let i = 0; i < forks; i++) {
      const r = await snap.forkRun({ kind: FB_REQ_EXEC, payload, timeoutMs: 10_000, outCap: 1 << 20, errCap: 1 << 20 }, { destroy: false }).done;
      if (r.vm) live.push(r.vm);
    }
    const after = rssAnonKiB();
    const availAfter = memAvailableKiB();
    // each fork's own copies of RAM + its mailbox pages (pagemap), what a session reports
    const privateKiB = live.reduce((a, v) => a + v.privateBytes() / 1024, 0);
    for (const v of live) v.close();
    const k = Math.max(1, live.length);
    return { forks: live.length, pagesPerFork: (after - before) / 4 / k, memAvailableKiBPerFork: (availBefore - availAfter) / k,
      privateKiBPerFork: privateKiB / k, ramMiB: snap.ramSize / 1048576 };
  } finally {
    snap.close();
  }
}

/** KVM's first-touch page faults (pf_fixed) and exits of one print(1+1): in a fresh fork
 *  from a bound pool, and in one fork recycled between execs (VMM level, no engine). */
async function faultsPerExec(n: number, code = 'print(1+1)'): Promise<{ fresh: Dist; freshExits: Dist; recycled: Dist; recycledExits: Dist; resetUs: Dist; keptKiB: number } | null> {
  const t = (await listTemplates()).find((x) => x.name === 'python');
  if (!t) return null;
  const snap = new Snapshot(t.memPath, t.statePath);
  const pool = new Pool(Math.min(n, 16), snap.ramSize);
  pool.bind(snap);
  const req = { kind: FB_REQ_EXEC, payload: JSON.stringify({ code, env: {}, stdin: '' }), timeoutMs: 10_000, outCap: 1 << 20, errCap: 1 << 20 };
  const fresh: number[] = [], freshExits: number[] = [], rec: number[] = [], recExits: number[] = [], reset: number[] = [];
  let kept = 0;
  try {
    for (let i = 0; i < n; i++) {
      if (i % 16 === 0) await waitPool(pool, 30_000);
      const r = await snap.forkRun(req, { pool, destroy: false }).done;
      const k = r.vm!.kvmStats();
      fresh.push(k.pfFixed);
      freshExits.push(k.exits);
      r.vm!.close();
    }
    const first = await snap.forkRun(req, { pool, destroy: false }).done;
    const vm = first.vm!;
    try {
      for (let i = 0; i < n; i++) {
        const st = await vm.recycle();
        reset.push(st.ns / 1e3);
        const k0 = vm.kvmStats();
        await vm.run(req);
        const k1 = vm.kvmStats();
        rec.push(k1.pfFixed - k0.pfFixed);
        recExits.push(k1.exits - k0.exits);
      }
      await vm.recycle();
      kept = vm.privateBytes() / 1024;
    } finally {
      vm.close();
    }
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOTSUP') return null;   // no binary KVM stats on this kernel
    throw e;
  } finally {
    pool.close();
    snap.close();
  }
  return { fresh: dist(fresh), freshExits: dist(freshExits), recycled: dist(rec), recycledExits: dist(recExits), resetUs: dist(reset), keptKiB: kept };
}

async function benchExec(n: number): Promise<{ json: Record<string, unknown>; rows: Row[] }> {
  const cold = await execSeries(n, 0, 0);
  const warm = await execSeries(n, 2, 25);
  // Recycling on, no warm-up forks: every exec after the first runs in a fork that served no
  // warm-up exec, recycled after the previous answer (back to back: the wait for that reset counts).
  const rec = await execSeries(n, 0, 0, 'python', 'print(1+1)', true);
  const warmRec = await execSeries(n, 2, 25, 'python', 'print(1+1)', true);
  const rw = rec.warm;
  const perRecycle = rw && rw.recycled ? { ramPages: rw.ramPages / rw.recycled, mailboxPages: rw.mailboxPages / rw.recycled, resetMs: rw.resetNs / rw.recycled / 1e6 } : null;
  const rows: Row[] = [
    { name: 'fresh fork + exec print(1+1) (numpy loaded)', value: `p50 ${ms(cold.total.p50)} ms  p99 ${ms(cold.total.p99)} ms (fork p50 ${ms(cold.fork.p50)} ms, exec p50 ${ms(cold.exec.p50)} ms)` },
    { name: 'pre-warmed fork + exec print(1+1), 1 exec / 25 ms', value: `p50 ${ms(warm.total.p50)} ms  p99 ${ms(warm.total.p99)} ms (exec p50 ${ms(warm.exec.p50)} ms; warm pool ${JSON.stringify(warm.warm)})` },
    { name: 'recycled fork + exec print(1+1), back to back (no warm-up exec)', value: `p50 ${ms(rec.total.p50)} ms  p99 ${ms(rec.total.p99)} ms (exec p50 ${ms(rec.exec.p50)} ms; ${rw?.recycled ?? 0} recycles, ${rw?.misses ?? 0} fresh)` },
    { name: 'warm + recycled (the defaults), 1 exec / 25 ms', value: `p50 ${ms(warmRec.total.p50)} ms  p99 ${ms(warmRec.total.p99)} ms (exec p50 ${ms(warmRec.exec.p50)} ms)` },
  ];
  if (perRecycle) rows.push({ name: 'per recycle (reset on the worker, after the answer)',
    value: `${perRecycle.ramPages.toFixed(0)} private RAM pages + ${perRecycle.mailboxPages.toFixed(1)} mailbox pages reset in ${ms(perRecycle.resetMs)} ms; host memory per kept fork ≈ ${((perRecycle.ramPages + perRecycle.mailboxPages) * 4).toFixed(0)} KiB` });
  const faults = await faultsPerExec(Math.min(n, 50));
  if (faults) rows.push({ name: 'KVM page faults fixed per exec print(1+1) (first touches)',
    value: `fresh fork p50 ${faults.fresh.p50} (${faults.freshExits.p50} exits), recycled fork p50 ${faults.recycled.p50} (${faults.recycledExits.p50} exits); reset p50 ${ms(faults.resetUs.p50 / 1000)} ms; kept fork holds ${faults.keptKiB.toFixed(0)} KiB` });
  else rows.push({ name: 'KVM page faults per exec', value: 'skipped: no binary KVM stats (KVM_GET_STATS_FD) on this kernel' });
  const dirty = await dirtiedPages(Math.min(n, 50));
  rows.push({ name: 'pages written per exec (host RssAnon per live fork after one print(1+1))',
    value: `${dirty.pagesPerFork.toFixed(0)} pages (${(dirty.pagesPerFork * 4).toFixed(0)} KiB) over ${dirty.forks} forks; per live fork: private ${dirty.privateKiBPerFork.toFixed(0)} KiB, host MemAvailable ${dirty.memAvailableKiBPerFork.toFixed(0)} KiB (RAM ${dirty.ramMiB} MiB)` });
  const json: Record<string, unknown> = { bench: 'exec', n, time: new Date().toISOString(),
    freshForkExecMs: mapD(cold.total, ms), freshForkMs: mapD(cold.fork, ms), freshExecMs: mapD(cold.exec, ms),
    warmForkExecMs: mapD(warm.total, ms), warmExecMs: mapD(warm.exec, ms), warmPool: warm.warm, pagesWrittenPerExec: dirty,
    recycledForkExecMs: mapD(rec.total, ms), recycledExecMs: mapD(rec.exec, ms), recyclePool: rec.warm, perRecycle,
    warmRecycledForkExecMs: mapD(warmRec.total, ms), faultsPerExec: faults };
  const base = cold.total.p50;
  const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
  if (hasNumpy) {
    const host: number[] = [];
    for (let i = 0; i < Math.min(n, 20); i++) {
      const t0 = performance.now();
      spawnSync('python3', ['-c', 'import numpy; print(1+1)'], { stdio: 'ignore' });
      host.push(performance.now() - t0);
    }
    const hostD = dist(host);
    rows.push({ name: 'host python3 -c "import numpy; print(1+1)"', value: `p50 ${ms(hostD.p50)} ms  (fresh-fork forkbox ${(hostD.p50 / base).toFixed(1)}× faster, warm ${(hostD.p50 / warm.total.p50).toFixed(1)}×)` });
    json.hostProcessMs = mapD(hostD, ms);
    const r = spawnSync('python3', ['-c', HOST_FORK_PY, String(n), 'numpy'], { encoding: 'utf8' });
    const fk = dist(r.stderr.trim().split(/\s+/).map(Number).filter(Number.isFinite).map((x) => x / 1e6));
    rows.push({ name: 'host os.fork() of a numpy-loaded python (no isolation)', value: `p50 ${ms(fk.p50)} ms  p99 ${ms(fk.p99)} ms  (forkbox/host-fork p50: fresh ${(base / fk.p50).toFixed(2)}, warm ${(warm.total.p50 / fk.p50).toFixed(2)}, recycled ${(rec.total.p50 / fk.p50).toFixed(2)})`, target: 'recycled ≤1.5' });
    json.recycledOverHostForkP50 = rec.total.p50 / fk.p50;
    json.hostForkMs = mapD(fk, ms);
  } else {
    rows.push({ name: 'host python3 + numpy', value: 'skipped: the host python3 has no numpy' });
  }
  return { json, rows };
}

/** bench exec --language javascript: console.log(1+1) on Debian's node, fresh and warm, beside a host `node -e`. */
async function benchExecJs(n: number): Promise<{ json: Record<string, unknown>; rows: Row[] }> {
  const code = 'console.log(1+1)';
  const cold = await execSeries(n, 0, 0, 'javascript', code);
  const warm = await execSeries(n, 2, 25, 'javascript', code);
  const dirty = await dirtiedPages(Math.min(n, 50), 'javascript', code);
  const rows: Row[] = [
    { name: 'fresh fork + exec console.log(1+1) (node 18)', value: `p50 ${ms(cold.total.p50)} ms  p99 ${ms(cold.total.p99)} ms (fork p50 ${ms(cold.fork.p50)} ms, exec p50 ${ms(cold.exec.p50)} ms)` },
    { name: 'pre-warmed fork + exec console.log(1+1), 1 exec / 25 ms', value: `p50 ${ms(warm.total.p50)} ms  p99 ${ms(warm.total.p99)} ms (exec p50 ${ms(warm.exec.p50)} ms; warm pool ${JSON.stringify(warm.warm)})`, target: 'p50 ≤3 ms' },
    { name: 'pages written per exec (host RssAnon per live fork after one console.log(1+1))',
      value: `${dirty.pagesPerFork.toFixed(0)} pages (${(dirty.pagesPerFork * 4).toFixed(0)} KiB) over ${dirty.forks} forks; per live fork: private ${dirty.privateKiBPerFork.toFixed(0)} KiB, host MemAvailable ${dirty.memAvailableKiBPerFork.toFixed(0)} KiB (RAM ${dirty.ramMiB} MiB)` },
  ];
  const json: Record<string, unknown> = { language: 'javascript', freshMs: mapD(cold.total, ms), warmMs: mapD(warm.total, ms), dirty };
  const v = spawnSync('node', ['--version'], { encoding: 'utf8' });
  if (v.status === 0) {
    const host: number[] = [];
    for (let i = 0; i < Math.min(n, 30); i++) {
      const t0 = performance.now();
      spawnSync('node', ['-e', code], { stdio: 'ignore' });
      host.push(performance.now() - t0);
    }
    const hostD = dist(host);
    rows.push({ name: `host node -e "${code}" (${v.stdout.trim()})`, value: `p50 ${ms(hostD.p50)} ms  p99 ${ms(hostD.p99)} ms  (fresh-fork forkbox ${(hostD.p50 / cold.total.p50).toFixed(1)}× faster, warm ${(hostD.p50 / warm.total.p50).toFixed(1)}×)` });
    json.hostProcessMs = mapD(hostD, ms);
  } else {
    rows.push({ name: 'host node', value: 'skipped: no node on the host PATH' });
  }
  return { json, rows };
}

/** `bench http …` hands its arguments to the HTTP load benchmark (bench/http-load.ts). */
function runHttpBench(args: string[]): Promise<number> {
  const script = join(repoRoot, 'dist', 'bench', 'http-load.js');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
    child.once('error', (e) => { process.stderr.write(`forkbox bench http: ${e.message}\n`); resolve(1); });
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

export async function run(args: string[]): Promise<number> {
  if (args[0] === 'http') return runHttpBench(args.slice(1));
  if (args[0] === 'soak') return (await import('../../bench/soak.js')).runSoak(args.slice(1));
  if (args[0] === 'session') return (await import('../../bench/session.js')).runSessionBench(args.slice(1));
  if (args[0] === 'processes') return (await import('../../bench/processes.js')).runProcessBench(args.slice(1));
  if (args[0] === 'templates' || (args[0] === 'exec' && args.some((a) => a === '--template' || a.startsWith('--template='))))
    return (await import('../../bench/templates.js')).runTemplateBench(args.slice(1));
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, n: { type: 'string', short: 'n' },
      out: { type: 'string' }, help: { type: 'boolean', short: 'h' }, language: { type: 'string' } } });
  } catch (e) {
    process.stderr.write(`forkbox bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const which = positionals[0];
  if (values.help || (which !== 'fork' && which !== 'exec')) {
    (values.help ? process.stdout : process.stderr).write(USAGE);
    return values.help ? 0 : 2;
  }
  const n = values.n ? Number(values.n) : which === 'fork' ? 1000 : 100;
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write('forkbox bench: -n takes a positive integer\n');
    return 2;
  }
  const p = probe();
  if (!p.available) {
    process.stderr.write(`forkbox bench: KVM is not available: ${p.reason}\n`);
    return 1;
  }
  if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
  const lang = values.language ?? 'python';
  if (!['python', 'javascript', 'js', 'node'].includes(lang)) {
    process.stderr.write(`forkbox bench: --language takes python or javascript\n`);
    return 2;
  }
  const { json, rows } = which === 'fork' ? await benchFork(n) : lang === 'python' ? await benchExec(n) : await benchExecJs(n);
  if (values.out) writeFileSync(values.out, JSON.stringify(json, null, 2) + '\n');
  if (values.json) {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  } else {
    const w = Math.max(...rows.map((r) => r.name.length));
    for (const r of rows) process.stdout.write(`${r.name.padEnd(w)}  ${r.value}${r.target ? `   [target ${r.target}]` : ''}\n`);
  }
  return 0;
}

