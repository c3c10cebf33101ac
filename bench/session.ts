// session.ts — `forkbox bench session [-n N] [--json]`: what sessions cost,
// each figure beside a baseline taken in the same run (these machines are
// noisy): a session exec of `x + 1` against a one-shot exec of the same code;
// a live fork of a session holding 50 MiB of numpy state (p50 latency, and the
// host memory of the parent plus three children against the session alone);
// pause and resume of that session. Prints targets beside results and never
// fails on a number.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setLogLevel } from '../src/lib/log.js';
import { createEngine, type ForkboxEngine } from '../src/engine/index.js';

export interface Dist { n: number; p50: number; p99: number }
export function dist(xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  return { n: s.length, p50: q(0.5), p99: q(0.99) };
}
export const r2 = (x: number): number => Math.round(x * 100) / 100;

/** Host memory in use (MemTotal - MemAvailable), KiB: counts the kernel's share of a VM too. */
export function usedKiB(): number {
  const t = readFileSync('/proc/meminfo', 'utf8');
  const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN);
  return get('MemTotal') - get('MemAvailable');
}
/** This process's proportional set size, KiB: a page mapped by several forks counts once. */
export function pssKiB(): number {
  const t = readFileSync('/proc/self/smaps_rollup', 'utf8');
  return Number(/^Pss:\s+(\d+)/m.exec(t)?.[1] ?? NaN);
}
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

async function exec(engine: ForkboxEngine, id: string, code: string): Promise<number> {
  const t0 = performance.now();
  const r = await engine.execSession('bench', id, { code, language: 'python', timeoutSeconds: 60 });
  if (r.exitCode !== 0) throw new Error(`session exec failed: ${r.stderr}`);
  return performance.now() - t0;
}

export async function runSessionBench(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { n: { type: 'string', short: 'n' }, json: { type: 'boolean' } } });
  const n = Number(values.n ?? 200);
  setLogLevel('warn');
  const dir = mkdtempSync(join(tmpdir(), 'forkbox-bench-sessions-'));
  const engine = await createEngine({ sessionDir: dir, warmForks: 4 });
  try {
    await engine.ready();
    // 1. session exec vs one-shot exec, interleaved.
    const s = await engine.createSession({ owner: 'bench', language: 'python' });
    await exec(engine, s.id, 'x = 41');
    for (let i = 0; i < 20; i++) await exec(engine, s.id, 'x + 1');   // warm the session's pages
    // Each in its own loop: a one-shot exec uses up a warm fork whose refill runs beside the next exec.
    const sess: number[] = [], shot: number[] = [];
    for (let i = 0; i < n; i++) sess.push(await exec(engine, s.id, 'x + 1'));
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await engine.exec({ code: 'x = 41\nprint(x + 1)', language: 'python', timeoutSeconds: 60 });
      shot.push(performance.now() - t0);
    }
    // 2. live fork of a session holding 50 MiB.
    const base0 = usedKiB(), pss0 = pssKiB();
    const big = await engine.createSession({ owner: 'bench', language: 'python' });
    await exec(engine, big.id, 'import numpy as np\nstate = np.full(50 * 2**17, 1.5)\nfloat(state.sum())');
    await settle();
    const one = usedKiB() - base0, onePss = pssKiB() - pss0;
    const forkMs: number[] = [];
    const kids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const [k] = await engine.forkSession('bench', big.id, 1);
      forkMs.push(performance.now() - t0);
      kids.push(k!.id);
      await exec(engine, k!.id, 'float(state.sum())');   // each child reads all of it
    }
    await settle();
    const withKids = usedKiB() - base0, withKidsPss = pssKiB() - pss0;
    // more fork samples on a throwaway basis
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      const [k] = await engine.forkSession('bench', big.id, 1);
      forkMs.push(performance.now() - t0);
      await engine.deleteSession('bench', k!.id);
    }
    // 3. pause and resume.
    const pauseMs: number[] = [], resumeMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      let t0 = performance.now();
      await engine.pauseSession('bench', big.id);
      pauseMs.push(performance.now() - t0);
      t0 = performance.now();
      await exec(engine, big.id, '1');
      resumeMs.push(performance.now() - t0);
    }
    const res = {
      sessionExecMs: dist(sess), oneShotExecMs: dist(shot), ratioSessionToOneShot: r2(dist(sess).p50 / dist(shot).p50),
      liveForkMs: dist(forkMs), sessionMemMiB: r2(one / 1024), parentPlus3ChildrenMiB: r2(withKids / 1024),
      memRatio: r2(withKids / one), sessionPssMiB: r2(onePss / 1024), parentPlus3ChildrenPssMiB: r2(withKidsPss / 1024),
      pssRatio: r2(withKidsPss / onePss), pauseMs: dist(pauseMs), resumeWithExecMs: dist(resumeMs),
    };
    if (values.json) {
      process.stdout.write(JSON.stringify(res, null, 2) + '\n');
    } else {
      const d = (x: Dist): string => `p50 ${r2(x.p50)} ms, p99 ${r2(x.p99)} ms (n=${x.n})`;
      process.stdout.write([
        `session exec of x + 1        ${d(res.sessionExecMs)}   target p50 <= 1 ms`,
        `one-shot exec (baseline)     ${d(res.oneShotExecMs)}   session/one-shot p50 = ${res.ratioSessionToOneShot}`,
        `live fork of a 50 MiB session ${d(res.liveForkMs)}   target p50 <= 10 ms`,
        `host memory (PSS of this process): session ${res.sessionPssMiB} MiB, + 3 children that read all of it ${res.parentPlus3ChildrenPssMiB} MiB = ${res.pssRatio}x   target <= 1.5x`,
        `host memory (MemAvailable, whole machine, incl. the kernel's per-VM share): ${res.sessionMemMiB} MiB, with 3 children ${res.parentPlus3ChildrenMiB} MiB = ${res.memRatio}x`,
        `pause                        ${d(res.pauseMs)}   target <= 100 ms`,
        `resume (+ one exec)          ${d(res.resumeWithExecMs)}   target <= 20 ms`,
      ].join('\n') + '\n');
    }
    return 0;
  } finally {
    await engine.close(1000);
    rmSync(dir, { recursive: true, force: true });
  }
}
