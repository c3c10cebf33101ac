// report.ts — the harness's pure parts: parse the runner's lines into per-test
// outcomes, compare a module's fork run against its host run (the gap is what
// passes on the host and not in the fork), check rows against the known-failures
// file (unexplained and stale entries), and total and format the table.
import { MARK } from './runner-script.js';

export type Outcome = 'pass' | 'fail' | 'error' | 'skip' | 'xfail';
/** How a run ended: finished (summary line seen), or why not. */
export type RunStatus = 'ok' | 'skipped' | 'import-error' | 'timeout' | 'crashed' | 'died';

export interface ModuleRun {
  status: RunStatus;
  tests: Map<string, Outcome>;
  /** Exception line (fail/error) or skip reason per test id. */
  why?: Map<string, string>;
  /** Skip reason, import error, crash detail or exit code. */
  detail?: string;
  seconds?: number;
}

const OUTCOMES = new Set<string>(['pass', 'fail', 'error', 'skip', 'xfail']);
export const passed = (o: Outcome | undefined): boolean => o === 'pass' || o === 'xfail';

/** Parses runner output; `ended` says how the process/exec ended when no summary line came. */
export function parseRun(stdout: string, ended: { status: Exclude<RunStatus, 'ok' | 'skipped' | 'import-error'>; detail?: string } = { status: 'died' }): ModuleRun {
  const tests = new Map<string, Outcome>();
  const why = new Map<string, string>();
  type Summary = { skipped?: string; importError?: string; seconds?: number };
  let summary = null as Summary | null;
  for (const line of stdout.split('\n')) {
    const at = line.indexOf(MARK + '\t');
    if (at < 0) continue;
    const f = line.slice(at + MARK.length + 1).split('\t');
    if (f[0] === 'T' && f.length >= 3 && OUTCOMES.has(f[1]!)) {
      const id = f[2]!;
      const prev = tests.get(id);
      // An id reported twice (a class-level error after its tests): the worse one wins.
      if (!prev || passed(prev) || prev === 'skip') {
        tests.set(id, f[1] as Outcome);
        if (f[3]) why.set(id, f[3]);
        else why.delete(id);
      }
    } else if (f[0] === 'END' && f.length >= 2) {
      try {
        summary = JSON.parse(f.slice(1).join('\t')) as Summary;
      } catch {
        summary = null;
      }
    }
  }
  if (!summary) return { status: ended.status, tests, why, ...(ended.detail ? { detail: ended.detail } : {}) };
  const seconds = typeof summary.seconds === 'number' ? summary.seconds : undefined;
  const s = seconds !== undefined ? { seconds } : {};
  if (summary.skipped !== undefined) return { status: 'skipped', tests, why, detail: summary.skipped, ...s };
  if (summary.importError !== undefined) return { status: 'import-error', tests, why, detail: summary.importError, ...s };
  return { status: 'ok', tests, why, ...s };
}

export interface Row {
  module: string;
  hostStatus: RunStatus;
  forkStatus: RunStatus;
  hostPass: number;
  /** Tests passing in the fork (of any id). */
  forkPass: number;
  /** Host-passing tests that also pass in the fork. */
  forkPassOfHost: number;
  /** forkPassOfHost / hostPass (1 when the host passes nothing). */
  ratio: number;
  /** Host-passing tests that do not pass in the fork, with the fork's outcome ('missing' = never reported). */
  gap: Array<{ id: string; fork: Outcome | 'missing'; why?: string }>;
  /** Ids only the fork reported, not passing (a setUpModule/setUpClass error or skip explains 'missing' tests). */
  forkOnly: Array<{ id: string; fork: Outcome; why?: string }>;
  hostDetail?: string;
  forkDetail?: string;
  hostSeconds?: number;
  forkSeconds?: number;
}

export function compare(module: string, host: ModuleRun, fork: ModuleRun): Row {
  let hostPass = 0;
  let forkPassOfHost = 0;
  const gap: Row['gap'] = [];
  for (const [id, o] of host.tests) {
    if (!passed(o)) continue;
    hostPass++;
    const f = fork.tests.get(id);
    if (passed(f)) forkPassOfHost++;
    else {
      const why = fork.why?.get(id);
      gap.push({ id, fork: f ?? 'missing', ...(why ? { why } : {}) });
    }
  }
  let forkPass = 0;
  const forkOnly: Row['forkOnly'] = [];
  for (const [id, o] of fork.tests) {
    if (passed(o)) forkPass++;
    else if (!host.tests.has(id)) {
      const why = fork.why?.get(id);
      forkOnly.push({ id, fork: o, ...(why ? { why } : {}) });
    }
  }
  return {
    module, hostStatus: host.status, forkStatus: fork.status, hostPass, forkPass, forkPassOfHost,
    ratio: hostPass === 0 ? 1 : forkPassOfHost / hostPass, gap, forkOnly,
    ...(host.detail ? { hostDetail: host.detail } : {}), ...(fork.detail ? { forkDetail: fork.detail } : {}),
    ...(host.seconds !== undefined ? { hostSeconds: host.seconds } : {}), ...(fork.seconds !== undefined ? { forkSeconds: fork.seconds } : {}),
  };
}

/** A module is at 100% when every host-passing test passes in the fork and the fork run ended like the host's. */
export const complete = (r: Row): boolean => r.gap.length === 0 && (r.forkStatus === r.hostStatus || r.forkStatus === 'ok');

export interface KnownFailures { [module: string]: string }

export interface KnownCheck { unexplained: string[]; stale: string[] }

/** Modules below 100% without an entry, and entries for modules that now pass (among the rows run). */
export function checkKnown(rows: Row[], known: KnownFailures): KnownCheck {
  const unexplained: string[] = [];
  const stale: string[] = [];
  for (const r of rows) {
    const has = Object.prototype.hasOwnProperty.call(known, r.module);
    if (!complete(r) && !has) unexplained.push(r.module);
    if (complete(r) && has) stale.push(r.module);
  }
  return { unexplained, stale };
}

export interface Totals { modules: number; hostPass: number; forkPassOfHost: number; ratio: number; complete: number; timeouts: number; crashes: number }

export function totals(rows: Row[]): Totals {
  const hostPass = rows.reduce((s, r) => s + r.hostPass, 0);
  const forkPassOfHost = rows.reduce((s, r) => s + r.forkPassOfHost, 0);
  return {
    modules: rows.length, hostPass, forkPassOfHost, ratio: hostPass === 0 ? 1 : forkPassOfHost / hostPass,
    complete: rows.filter(complete).length,
    timeouts: rows.filter((r) => r.forkStatus === 'timeout').length,
    crashes: rows.filter((r) => r.forkStatus === 'crashed' || r.forkStatus === 'died').length,
  };
}

/** A module whose known-failure reason names processes or the network (issue 13's split). */
export const needsProcOrNet = (module: string, known: KnownFailures): boolean => /no processes|no network/.test(known[module] ?? '');

/** Totals three ways: all modules; those needing neither processes nor the network; the rest. */
export function groupTotals(rows: Row[], known: KnownFailures): { all: Totals; local: Totals; procOrNet: Totals } {
  return { all: totals(rows), local: totals(rows.filter((r) => !needsProcOrNet(r.module, known))),
    procOrNet: totals(rows.filter((r) => needsProcOrNet(r.module, known))) };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** The table the CLI prints: one line per module, then the totals. */
export function formatTable(rows: Row[], known: KnownFailures = {}): string {
  const w = Math.max(6, ...rows.map((r) => r.module.length));
  const lines = [`${'module'.padEnd(w)}  ${'host'.padStart(6)}  ${'fork'.padStart(6)}  ${'ratio'.padStart(6)}  status`];
  for (const r of rows) {
    const st = r.forkStatus === r.hostStatus ? r.forkStatus : `${r.forkStatus} (host ${r.hostStatus})`;
    const note = complete(r) ? '' : known[r.module] ? `  known: ${known[r.module]}` : '  UNEXPLAINED';
    lines.push(`${r.module.padEnd(w)}  ${String(r.hostPass).padStart(6)}  ${String(r.forkPassOfHost).padStart(6)}  ${pct(r.ratio).padStart(6)}  ${st}${note}`);
  }
  const t = totals(rows);
  lines.push(`${'TOTAL'.padEnd(w)}  ${String(t.hostPass).padStart(6)}  ${String(t.forkPassOfHost).padStart(6)}  ${pct(t.ratio).padStart(6)}  ` +
    `${t.complete}/${t.modules} modules at 100%, ${t.timeouts} timed out, ${t.crashes} crashed or died`);
  const g = groupTotals(rows, known);
  for (const [name, x] of [['without processes/network', g.local], ['needing processes/network', g.procOrNet]] as const) {
    lines.push(`  ${name}: ${x.forkPassOfHost}/${x.hostPass} host-passing tests pass in forks (${pct(x.ratio)}), ${x.complete}/${x.modules} modules at 100%`);
  }
  return lines.join('\n') + '\n';
}
