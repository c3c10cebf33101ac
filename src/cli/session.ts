// session.ts — `forkbox session create|exec|ls|rm|fork|pause`: sessions on a
// running server over HTTP (FORKBOX_BASE_URL, default http://127.0.0.1:8080;
// FORKBOX_API_KEY), through the JS SDK's client. `create` and `fork` print
// session ids one per line (so `ID=$(forkbox session create)` works); `exec`
// copies the program's output through, prints a last expression's value like a
// REPL, writes rich outputs with --save-results DIR, and exits with the program's exit code.
import { parseArgs } from 'node:util';
import { ForkboxError, Sandbox } from '../../sdk/js/src/index.js';
import { reportResults } from './results.js';

const USAGE = `usage: forkbox session <command>
  create [--language python] [--template NAME] [--name N] [--timeout S] [--idle-timeout S] [--json]
                              create a session; prints its id
  exec ID CODE|- [--timeout S] [--discard] [--save-results DIR]
                              run code in the session ('-' reads it from stdin);
                              rich outputs go to DIR/result-<n>.png|svg|html|json|txt
  ls [--json]                 list this key's sessions
  rm ID...                    delete sessions
  fork ID [--count N]         fork a session; prints the new ids
  pause ID                    write a session to disk and free its VM
The server is FORKBOX_BASE_URL (default http://127.0.0.1:8080); the key is FORKBOX_API_KEY.
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function seconds(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} takes whole seconds > 0`);
  return n;
}

class UsageError extends Error {}

async function dispatch(cmd: string, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      language: { type: 'string', default: 'python' }, template: { type: 'string' }, name: { type: 'string' }, timeout: { type: 'string' },
      'idle-timeout': { type: 'string' }, json: { type: 'boolean' }, count: { type: 'string', default: '1' },
      discard: { type: 'boolean' }, 'save-results': { type: 'string' },
    },
  });
  const out = (s: string): void => { process.stdout.write(s); };
  switch (cmd) {
    case 'create': {
      if (positionals.length !== 0) throw new UsageError('create takes no arguments');
      const timeout = seconds(values.timeout, '--timeout');
      const idle = seconds(values['idle-timeout'], '--idle-timeout');
      const s = await Sandbox.create({
        language: values.language!, ...(values.template !== undefined ? { template: values.template } : {}),
        ...(values.name !== undefined ? { name: values.name } : {}),
        ...(timeout !== undefined ? { timeout } : {}), ...(idle !== undefined ? { idleTimeout: idle } : {}),
      });
      out(values.json ? JSON.stringify(await s.info()) + '\n' : s.id + '\n');
      return 0;
    }
    case 'exec': {
      if (positionals.length !== 2) throw new UsageError('exec takes ID and CODE (or - for stdin)');
      const code = positionals[1] === '-' ? await readStdin() : positionals[1]!;
      const timeout = seconds(values.timeout, '--timeout');
      const s = await Sandbox.connect(positionals[0]!);
      const ac = new AbortController();
      const onSig = (): void => ac.abort();
      process.once('SIGINT', onSig);
      try {
        const r = await s.run(code, { ...(timeout !== undefined ? { timeout } : {}), ...(values.discard ? { discard: true } : {}), signal: ac.signal });
        out(r.stdout);
        process.stderr.write(r.stderr);
        if (r.result !== undefined) out(r.result + '\n');
        reportResults(r.results, r.resultsTruncated, values['save-results']);
        if (r.outcome === 'crashed') process.stderr.write(`forkbox: sandbox crashed: ${r.crash ?? 'unknown'}\n`);
        if (r.outcome === 'timeout') process.stderr.write('forkbox: timed out\n');
        return r.exitCode;
      } finally {
        process.off('SIGINT', onSig);
      }
    }
    case 'ls': {
      const list = await Sandbox.list();
      if (values.json) {
        out(JSON.stringify(list) + '\n');
        return 0;
      }
      out('ID\tNAME\tSTATE\tEXECS\tPARENT\tEXPIRES\n');
      for (const s of list) out(`${s.id}\t${s.name ?? '-'}\t${s.state}\t${s.execs}\t${s.parentId ?? '-'}\t${s.expiresAt}\n`);
      return 0;
    }
    case 'rm': {
      if (positionals.length === 0) throw new UsageError('rm takes one or more session ids');
      let failed = 0;
      for (const id of positionals) {
        try {
          await (await Sandbox.connect(id)).kill();
        } catch (e) {
          failed++;
          process.stderr.write(`forkbox session rm ${id}: ${(e as Error).message}\n`);
        }
      }
      return failed ? 1 : 0;
    }
    case 'fork': {
      if (positionals.length !== 1) throw new UsageError('fork takes one session id');
      const count = Number(values.count);
      if (!Number.isInteger(count) || count < 1) throw new UsageError('--count takes a whole number >= 1');
      for (const c of await (await Sandbox.connect(positionals[0]!)).fork(count)) out(c.id + '\n');
      return 0;
    }
    case 'pause': {
      if (positionals.length !== 1) throw new UsageError('pause takes one session id');
      const info = await (await Sandbox.connect(positionals[0]!)).pause();
      out(`${info.id}\t${info.state}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown session command "${cmd}"`);
  }
}

export async function run(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (!cmd || cmd === '--help' || cmd === '-h') {
    process.stdout.write(USAGE);
    return cmd ? 0 : 2;
  }
  try {
    return await dispatch(cmd, rest);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`forkbox session: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`forkbox session ${cmd}: ${e instanceof ForkboxError ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
}
