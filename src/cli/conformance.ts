// conformance.ts — `forkbox conformance python [--modules a,b] [--json FILE]
// [--jobs N] [--timeout S] [--host-python P]`: CPython's own regression tests,
// one module per fresh fork, against the host's python3.11 as the baseline;
// prints per-module passes and ratios, the totals, and known-failure drift.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createEngine } from '../engine/index.js';
import { setLogLevel } from '../lib/log.js';
import { repoRoot } from '../lib/paths.js';
import { checkKnown, formatTable, groupTotals, totals, type KnownFailures, type Row } from '../conformance/report.js';
import { DEFAULT_HOST_PYTHON, runModules } from '../conformance/run.js';
import { Bundler, ensureSuite, listModules } from '../conformance/suite.js';

const USAGE = `usage: forkbox conformance python [--modules a,b,...] [--json FILE] [--jobs N] [--timeout S]
                                   [--host-python PATH] [--known FILE]
       forkbox conformance python --from FILE [--known FILE]
  runs CPython's test.test_* modules (Debian's libpython3.11-testsuite), each in a fresh fork
  and on the host's python3.11, and compares the tests that pass; --from re-reports a saved
  --json file against the known-failures file without running anything.
`;

export const knownFailuresPath = join(repoRoot, 'conformance', 'known-failures.json');

export async function loadKnown(path = knownFailuresPath): Promise<KnownFailures> {
  const j = JSON.parse(await readFile(path, 'utf8')) as { modules?: KnownFailures };
  return j.modules ?? {};
}

function report(rows: Row[], known: KnownFailures): void {
  process.stdout.write(formatTable(rows, known));
  const check = checkKnown(rows, known);
  if (check.unexplained.length) process.stdout.write(`below 100% without a known-failures entry: ${check.unexplained.join(', ')}\n`);
  if (check.stale.length) process.stdout.write(`known-failures entries that now pass (stale): ${check.stale.join(', ')}\n`);
}

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args, allowPositionals: true,
      options: {
        modules: { type: 'string' }, json: { type: 'string' }, jobs: { type: 'string', default: '2' },
        timeout: { type: 'string', default: '120' }, 'host-python': { type: 'string', default: DEFAULT_HOST_PYTHON },
        known: { type: 'string', default: knownFailuresPath }, from: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    process.stderr.write(`forkbox conformance: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'python') {
    process.stderr.write(USAGE);
    return 2;
  }
  const jobs = Number(values.jobs);
  const timeoutSeconds = Number(values.timeout);
  if (!Number.isInteger(jobs) || jobs < 1 || !Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    process.stderr.write(`forkbox conformance: --jobs takes an integer >= 1, --timeout seconds > 0\n${USAGE}`);
    return 2;
  }
  if (values.from) {
    const saved = JSON.parse(await readFile(values.from, 'utf8')) as { rows: Row[] };
    report(saved.rows, await loadKnown(values.known));
    return 0;
  }
  if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
  const progress = (l: string): void => { process.stderr.write(`forkbox: ${l}\n`); };
  const suite = await ensureSuite(progress);
  const all = await listModules(suite.testDir);
  const modules = values.modules ? values.modules.split(',').map((m) => m.trim()).filter(Boolean) : all;
  const unknown = modules.filter((m) => !all.includes(m));
  if (unknown.length) {
    process.stderr.write(`forkbox conformance: not in the suite: ${unknown.join(', ')}\n`);
    return 2;
  }
  const known = await loadKnown(values.known);
  const quiet = /^resolving packages|is cached$/;
  const engine = await createEngine({ poolSize: jobs + 1, warmForks: 0, workers: jobs + 1,
    onProgress: (l) => { if (!quiet.test(l)) progress(l); } });
  try {
    await engine.ready();
    const started = new Date();
    const writeJson = async (rows: Row[], finished: boolean): Promise<void> => {
      if (!values.json) return;
      await writeFile(values.json, JSON.stringify({
        suite: { package: 'libpython3.11-testsuite', version: suite.version }, hostPython: values['host-python'],
        started: started.toISOString(), ...(finished ? { finished: new Date().toISOString() } : { partial: true }), timeoutSeconds,
        totals: totals(rows), groups: groupTotals(rows, known), known: checkKnown(rows, known), rows,
      }, null, 1) + '\n');
    };
    // The JSON file is rewritten after every module, so a long run interrupted still leaves its rows.
    const soFar: Row[] = [];
    let writing = Promise.resolve();
    const rows = await runModules({
      modules, jobs, timeoutSeconds, hostPython: values['host-python'], bundler: new Bundler(suite), engine,
      onRow: (r, done, total) => {
        progress(`[${done}/${total}] ${r.module}: host ${r.hostPass}, fork ${r.forkPassOfHost} (${r.forkStatus})`);
        soFar.push(r);
        writing = writing.then(() => writeJson(soFar, false)).catch(() => {});
      },
    });
    await writing;
    report(rows, known);
    await writeJson(rows, true);
    return 0;
  } catch (e) {
    process.stderr.write(`forkbox conformance: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await engine.close(0);
  }
}
