// exec.ts — `forkbox exec [--lang python] [--template NAME] [--timeout S] [--times] [--save-results DIR] CODE|-`:
// builds the template if missing (progress on stderr), runs the code in a
// fresh fork, copies its stdout/stderr through, writes its rich outputs
// (display(), figures) with --save-results, and exits with its exit code.
import { parseArgs } from 'node:util';
import { languageModule } from '../languages/index.js';
import { createEngine } from '../engine/index.js';
import { setLogLevel } from '../lib/log.js';
import { LANGUAGES, type Language } from '../engine/types.js';
import { reportResults } from './results.js';

const USAGE = 'usage: forkbox exec [--lang python] [--template NAME] [--timeout S] [--times] [--save-results DIR] CODE|-\n';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args, allowPositionals: true,
      options: { lang: { type: 'string', default: 'python' }, template: { type: 'string' }, timeout: { type: 'string', default: '30' },
        times: { type: 'boolean' }, 'save-results': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    process.stderr.write(`forkbox exec: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(USAGE);
    return 2;
  }
  const lang = values.lang as Language;
  if (!LANGUAGES.includes(lang)) {
    process.stderr.write(`forkbox exec: unsupported language "${values.lang}"\n`);
    return 2;
  }
  const timeoutSeconds = Number(values.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    process.stderr.write('forkbox exec: --timeout takes seconds > 0\n');
    return 2;
  }
  const code = positionals[0] === '-' ? await readStdin() : positionals[0]!;
  if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
  // Progress goes to stderr only when something is being built: a cached
  // template must leave stderr to the program.
  const quiet = /^resolving packages|is cached$/;
  const onProgress = (l: string): void => { if (!quiet.test(l)) process.stderr.write(`forkbox: ${l}\n`); };
  const engine = await createEngine({ poolSize: 0, warmForks: 0, workers: 1, onProgress,
    templates: [values.template ?? languageModule(lang)?.recipe.name ?? 'python'] });
  try {
    await engine.ready();
    const ac = new AbortController();
    const onSig = (): void => ac.abort();
    process.once('SIGINT', onSig);
    const r = await engine.exec({ code, language: lang, timeoutSeconds, ...(values.template ? { template: values.template } : {}) }, ac.signal);
    process.off('SIGINT', onSig);
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    if (r.stdoutTruncated) process.stderr.write('forkbox: stdout was truncated\n');
    if (r.stderrTruncated) process.stderr.write('forkbox: stderr was truncated\n');
    if (r.outcome === 'crashed') process.stderr.write(`forkbox: sandbox crashed: ${r.crash ?? 'unknown'}\n`);
    reportResults(r.results ?? [], r.resultsTruncated === true, values['save-results']);
    if (values.times)
      process.stderr.write(`forkbox: fork ${r.forkTimeMs.toFixed(3)} ms, exec ${r.execTimeMs.toFixed(3)} ms, total ${r.totalTimeMs.toFixed(3)} ms\n`);
    return r.exitCode;
  } catch (e) {
    process.stderr.write(`forkbox exec: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await engine.close(0);
  }
}
