// templates.ts — `forkbox bench templates [-n N] [--template NAME] [--json]`
// (also `forkbox bench exec --template NAME`): fork + exec of print(1+1) in
// each template (python beside python-data or NAME), fresh, pre-warmed and recycled,
// beside a host os.fork() of a python3 with the same imports (the template's
// own Debian packages, extracted unrewritten, in the same run), and the host
// memory per live fork (RssAnon and PSS of this process). Prints; never fails.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setLogLevel } from '../src/lib/log.js';
import { createEngine } from '../src/engine/index.js';
import { FB_REQ_EXEC } from '../src/vmm/abi.js';
import { Snapshot, probe, type Vm } from '../src/vmm/vmm.js';
import { listTemplates } from '../src/template/build.js';
import { readBuilt } from '../src/image/build.js';
import { debDir, debName } from '../src/image/packages.js';
import { extractDebs } from '../src/image/extract.js';
import { HOST_FORK_PY } from '../src/cli/host-fork.js';

interface Dist { n: number; p50: number; p99: number; missed?: string }
function dist(xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  return { n: s.length, p50: q(0.5), p99: q(0.99) };
}
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const status = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
const pssKiB = (): number => Number(/^Pss:\s+(\d+)/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? NaN);

async function series(template: string, n: number, warmForks: number, paceMs: number, recycle: boolean): Promise<Dist> {
  const engine = await createEngine({ poolSize: Math.min(n, 16), warmForks, recycle, templates: [template], templateWarmForks: { [template]: warmForks },
    onProgress: (l) => process.stderr.write(`forkbox: ${l}\n`) });
  try {
    await engine.ready();
    if (warmForks) await new Promise((r) => setTimeout(r, 1000));
    const total: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await engine.exec({ code: 'print(1+1)', language: 'python', template, timeoutSeconds: 10 });
      total.push(performance.now() - t0);
      if (r.stdout !== '2\n') throw new Error(`${template}: exec printed ${JSON.stringify(r.stdout)} (${r.stderr.slice(0, 300)})`);
      if (paceMs) await new Promise((res) => setTimeout(res, paceMs));
    }
    return dist(total);
  } finally {
    await engine.close(0);
  }
}

/** Host memory per live fork after one print(1+1): this process's RssAnon (pages the fork wrote) and PSS. */
async function memoryPerFork(template: string, forks: number): Promise<{ forks: number; rssAnonKiB: number; pssKiB: number }> {
  const t = (await listTemplates()).find((x) => x.name === template);
  if (!t) throw new Error(`no ${template} template`);
  const snap = new Snapshot(t.memPath, t.statePath);
  const payload = JSON.stringify({ code: 'print(1+1)', env: {}, stdin: '' });
  const live: Vm[] = [];
  try {
    const a0 = status('RssAnon');
    const p0 = pssKiB();
    for (let i = 0; i < forks; i++) {
      const r = await snap.forkRun({ kind: FB_REQ_EXEC, payload, timeoutMs: 10_000, outCap: 1 << 20, errCap: 1 << 20 }, { destroy: false }).done;
      if (r.vm) live.push(r.vm);
    }
    const k = Math.max(1, live.length);
    return { forks: live.length, rssAnonKiB: Math.round((status('RssAnon') - a0) / k), pssKiB: Math.round((pssKiB() - p0) / k) };
  } finally {
    for (const v of live) v.close();
    snap.close();
  }
}

/** os.fork() of the host's python3 with the template's preloads imported from its own (unrewritten) packages. */
async function hostFork(template: string, n: number): Promise<Dist | string> {
  const t = (await listTemplates()).find((x) => x.name === template);
  const built = t?.manifest.inputs.imageKey ? await readBuilt(t.manifest.inputs.imageKey) : undefined;
  if (!built) return 'skipped: the template\'s image is not in the cache';
  const preload = built.manifest.preload.filter((m) => m !== '_forkbox_warmup');
  const dir = mkdtempSync(join(tmpdir(), 'forkbox-hostfork-'));
  try {
    // Only the Python packages and the libraries they load: the host's own python3.11 and libc run them.
    const own = built.manifest.packages.filter((p) => !/^(libc6|python3\.11|python3\.11-minimal|libpython3\.11-(minimal|stdlib)|python3|python3-minimal|libpython3-stdlib)$/.test(p.name));
    await extractDebs(own.map((p) => join(debDir(), debName({ ...p, filename: '', size: 0 }))), dir);
    const env = { ...process.env, PYTHONPATH: join(dir, 'usr/lib/python3/dist-packages'), LD_LIBRARY_PATH: [join(dir, 'usr/lib/x86_64-linux-gnu'),
      join(dir, 'usr/lib/x86_64-linux-gnu/blas'), join(dir, 'usr/lib/x86_64-linux-gnu/lapack')].join(':'),
      ...Object.fromEntries(Object.entries(built.manifest.env).filter(([k]) => /THREADS|MPLBACKEND|JOBLIB|LOKY/.test(k))),
      MPLCONFIGDIR: join(dir, 'mpl') };
    const r = spawnSync('python3', ['-c', HOST_FORK_PY, String(n), preload.join(',')], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
    if (r.status !== 0) return `skipped: host python3 failed (${r.stderr.trim().split('\n').at(-1)})`;
    const lines = r.stderr.trim().split('\n');
    const missed = (lines.find((l) => l.startsWith('missed=')) ?? '').slice('missed='.length);
    const d = dist((lines.at(-1) ?? '').split(/\s+/).map(Number).filter(Number.isFinite).map((x) => x / 1e6));
    return missed ? { ...d, missed } : d;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runTemplateBench(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { n: { type: 'string', short: 'n', default: '100' }, json: { type: 'boolean' },
    template: { type: 'string', multiple: true }, language: { type: 'string' } } });
  const n = Number(values.n);
  if (!Number.isInteger(n) || n < 1) { process.stderr.write('forkbox bench templates: -n takes a positive integer\n'); return 2; }
  const p = probe();
  if (!p.available) { process.stderr.write(`forkbox bench templates: KVM is not available: ${p.reason}\n`); return 1; }
  if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
  const names = ['python', ...(values.template?.length ? values.template : ['python-data']).filter((t) => t !== 'python')];
  const out: Record<string, unknown> = { bench: 'templates', n, time: new Date().toISOString(), templates: {} };
  const rows: Array<[string, string]> = [];
  const res: Record<string, { fresh: Dist; warm: Dist; recycled: Dist; host: Dist | string; mem: Awaited<ReturnType<typeof memoryPerFork>> }> = {};
  for (const name of names) {
    const fresh = await series(name, n, 0, 0, false);
    const warm = await series(name, n, 2, 25, false);
    const recycled = await series(name, n, 0, 0, true);
    const mem = await memoryPerFork(name, Math.min(n, 30));
    const host = await hostFork(name, n);
    res[name] = { fresh, warm, recycled, host, mem };
    (out.templates as Record<string, unknown>)[name] = { freshMs: fresh, warmMs: warm, recycledMs: recycled, hostForkMs: host, memoryPerLiveFork: mem };
    rows.push([`${name}: fresh fork + exec print(1+1)`, `p50 ${r3(fresh.p50)} ms  p99 ${r3(fresh.p99)} ms`]);
    rows.push([`${name}: pre-warmed fork + exec, 1 exec / 25 ms`, `p50 ${r3(warm.p50)} ms  p99 ${r3(warm.p99)} ms`]);
    rows.push([`${name}: recycled fork + exec, back to back`, `p50 ${r3(recycled.p50)} ms  p99 ${r3(recycled.p99)} ms`]);
    rows.push([`${name}: host os.fork() of python3 with the same imports`, typeof host === 'string' ? host
      : `p50 ${r3(host.p50)} ms  p99 ${r3(host.p99)} ms${host.missed ? ` (without ${host.missed}: not importable outside the image)` : ''}`]);
    rows.push([`${name}: host memory per live fork`, `RssAnon ${mem.rssAnonKiB} KiB, PSS ${mem.pssKiB} KiB (over ${mem.forks} forks)`]);
  }
  const py = res.python!;
  for (const name of names.slice(1)) {
    const t = res[name]!;
    rows.push([`${name} / python (p50)`, `fresh ${(t.fresh.p50 / py.fresh.p50).toFixed(2)}×, warm ${(t.warm.p50 / py.warm.p50).toFixed(2)}×, recycled ${(t.recycled.p50 / py.recycled.p50).toFixed(2)}×   [target ≤ 1.5×]`]);
  }
  if (values.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  else {
    const w = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
  }
  return 0;
}
