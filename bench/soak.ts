// soak.ts — a soak benchmark: N execs (default 10,000) of a small program on
// one engine, C at a time (default 2), with the process's descriptors
// (/proc/self/fd), RSS, the engine's live forks and the VMM's live VMs and
// handles measured before and after. Prints them and the outcome counts; a
// benchmark, never a test: it does not fail on a number. Under node
// --expose-gc it collects garbage before each sample, so addon handles that
// wait only for their finalizers do not count as live.
//   node [--expose-gc] dist/bench/soak.js [-n 10000] [--concurrency 2] [--code 'print(1)'] [--json]
//   forkbox bench soak [same options]
import { readFileSync, readdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { setLogLevel } from '../src/lib/log.js';
import { createEngine } from '../src/engine/index.js';
import { probe, stats } from '../src/vmm/vmm.js';

interface Sample { fds: number; rssKiB: number; liveForks: number; vmsLive: number; handlesLive: number; poolReady: number }

function sample(health: { liveForks: number; pool: { ready: number } }): Sample {
  const s = stats();
  return {
    fds: readdirSync('/proc/self/fd').length,
    rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN),
    liveForks: health.liveForks, vmsLive: s.vmsLive, handlesLive: s.handlesLive, poolReady: health.pool.ready,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runSoak(args: string[]): Promise<number> {
  const { values: o } = parseArgs({
    args, options: { n: { type: 'string', short: 'n', default: '10000' }, concurrency: { type: 'string', default: '2' },
      code: { type: 'string', default: 'print(1)' }, json: { type: 'boolean', default: false } },
  });
  const n = Number(o.n), conc = Number(o.concurrency);
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(conc) || conc < 1) {
    process.stderr.write('soak: -n and --concurrency take positive integers\n');
    return 2;
  }
  const p = probe();
  if (!p.available) {
    process.stderr.write(`soak: KVM is not available: ${p.reason}\n`);
    return 1;
  }
  if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
  const engine = await createEngine({});
  await engine.ready();
  // Let the pools fill so "before" and "after" compare like with like.
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 100 && engine.health().pool.ready < engine.health().pool.target; i++) await sleep(50);
    await sleep(500);
    (globalThis as { gc?: () => void }).gc?.();
    await sleep(100);
  };
  await settle();
  const before = sample(engine.health());
  const outcomes: Record<string, number> = {};
  let wrong = 0, next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      try {
        const r = await engine.exec({ code: o.code!, language: 'python', timeoutSeconds: 10 });
        outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
        if (o.code === 'print(1)' && (r.stdout !== '1\n' || r.exitCode !== 0)) wrong++;
      } catch (e) {
        const k = `error:${(e as { code?: string }).code ?? 'unknown'}`;
        outcomes[k] = (outcomes[k] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  const seconds = (performance.now() - t0) / 1000;
  await settle();
  const after = sample(engine.health());
  await engine.close();
  const closed = { fds: readdirSync('/proc/self/fd').length, vmsLive: stats().vmsLive, handlesLive: stats().handlesLive };
  const result = { execs: n, concurrency: conc, seconds: Math.round(seconds * 10) / 10, execsPerSecond: Math.round(n / seconds),
    outcomes, wrongOutput: wrong, before, after, afterClose: closed };
  if (o.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    process.stdout.write(`soak: ${n} execs of ${JSON.stringify(o.code)}, ${conc} at a time, ${result.seconds} s ` +
      `(${result.execsPerSecond}/s); outcomes ${JSON.stringify(outcomes)}; wrong output ${wrong}\n`);
    const keys = Object.keys(before) as (keyof Sample)[];
    process.stdout.write(`${'measure'.padEnd(12)} ${'before'.padStart(10)} ${'after'.padStart(10)} ${'delta'.padStart(8)}\n`);
    for (const k of keys)
      process.stdout.write(`${k.padEnd(12)} ${String(before[k]).padStart(10)} ${String(after[k]).padStart(10)} ${String(after[k] - before[k]).padStart(8)}\n`);
    process.stdout.write(`after close: ${closed.fds} fds, ${closed.vmsLive} live VMs, ${closed.handlesLive} handles\n`);
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runSoak(process.argv.slice(2)).then((c) => { process.exitCode = c; }, (e) => {
    process.stderr.write(`soak: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  });
}
