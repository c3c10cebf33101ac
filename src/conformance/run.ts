// run.ts — runs conformance modules: each module once in a fresh fork (engine
// exec) and once on the host's python3.11 (the baseline), with the same runner
// script and bundle, N modules at a time; returns one compared row per module.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../engine/types.js';
import { log } from '../lib/log.js';
import { compare, parseRun, type ModuleRun, type Row } from './report.js';
import { runnerCode } from './runner-script.js';
import { Bundler, PACKAGE_SUITES } from './suite.js';

export const DEFAULT_HOST_PYTHON = '/usr/bin/python3.11';
const STDOUT_CAP = 16 * 1024 * 1024 - 1;
const STDERR_CAP = 256 * 1024;
const tail = (s: string, n = 400): string => s.length > n ? '…' + s.slice(-n) : s;

/** Runs the runner on the host python (isolated mode, no bytecode writes, like the template's argv). */
export async function runHost(python: string, code: string, timeoutSeconds: number): Promise<ModuleRun> {
  const dir = await mkdtemp(join(tmpdir(), 'fbconf-host-'));
  try {
    const script = join(dir, 'run.py');
    await writeFile(script, code);
    return await new Promise<ModuleRun>((resolve) => {
      const child = spawn(python, ['-I', '-B', script], {
        cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, TMPDIR: dir, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', OPENBLAS_NUM_THREADS: '1' },
      });
      const out: Buffer[] = [];
      let outLen = 0;
      let err = '';
      child.stdout.on('data', (b: Buffer) => { if (outLen < STDOUT_CAP) { out.push(b); outLen += b.length; } });
      child.stderr.on('data', (b: Buffer) => { err = (err + b.toString('utf8')).slice(-4096); });
      let timedOut = false;
      const killGroup = (): void => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ } };
      const timer = setTimeout(() => { timedOut = true; killGroup(); }, timeoutSeconds * 1000);
      child.on('error', (e) => { clearTimeout(timer); resolve({ status: 'died', tests: new Map(), detail: e.message }); });
      child.on('close', (codeN, sig) => {
        clearTimeout(timer);
        killGroup(); // a test's leftover children
        const stdout = Buffer.concat(out).toString('utf8');
        const ended = timedOut ? { status: 'timeout' as const, detail: `no summary after ${timeoutSeconds} s` }
          : { status: (sig ? 'crashed' : 'died') as 'crashed' | 'died', detail: `exit ${sig ?? codeN}: ${tail(err)}` };
        resolve(parseRun(stdout, ended));
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** Runs the runner in a fresh fork of the python template. */
export async function runFork(engine: Engine, code: string, timeoutSeconds: number): Promise<ModuleRun> {
  const r = await engine.exec({ code, language: 'python', timeoutSeconds, stdoutCap: STDOUT_CAP, stderrCap: STDERR_CAP });
  const ended = r.outcome === 'timeout' ? { status: 'timeout' as const, detail: `no summary after ${timeoutSeconds} s` }
    : r.outcome === 'crashed' ? { status: 'crashed' as const, detail: r.crash ?? 'crashed' }
    : { status: 'died' as const, detail: `exit ${r.exitCode}${r.stdoutTruncated ? ' (stdout truncated)' : ''}: ${tail(r.stderr)}` };
  return parseRun(r.stdout, ended);
}

export interface RunOptions {
  modules: string[];
  jobs: number;
  timeoutSeconds: number;
  hostPython: string;
  bundler: Bundler;
  engine: Engine;
  onRow?: (row: Row, done: number, total: number) => void;
}

/** Runs every module (host then fork), `jobs` modules at once; rows come back in module order. */
export async function runModules(o: RunOptions): Promise<Row[]> {
  const rows: Row[] = new Array(o.modules.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < o.modules.length) {
      const i = next++;
      const m = o.modules[i]!;
      const code = runnerCode(m, await o.bundler.blobs(m), PACKAGE_SUITES[m] ?? []);
      const host = await runHost(o.hostPython, code, o.timeoutSeconds);
      let fork: ModuleRun;
      try {
        fork = await runFork(o.engine, code, o.timeoutSeconds);
      } catch (e) {
        fork = { status: 'died', tests: new Map(), detail: `exec failed: ${(e as Error).message}` };
      }
      const row = compare(m, host, fork);
      log.debug('conformance.module', { module: m, host: row.hostPass, fork: row.forkPassOfHost, status: row.forkStatus });
      rows[i] = row;
      o.onRow?.(row, ++done, o.modules.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.jobs, o.modules.length)) }, worker));
  return rows;
}
