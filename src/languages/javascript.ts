// javascript.ts — JavaScript on Debian's own Node.js 18 (nodejs + libnode108 and
// their closure, syscalls rewritten like every binary of an image), the runner
// guest/runner.js (same contract as runner.py: JSON requests from /dev/forkbox,
// answer {"exit_code": n[, "result": inspect]}), and TypeScript as a second
// module whose prepare() strips types on the host (typescript's transpileModule).
import { createRequire } from 'node:module';
import type { Recipe } from '../image/recipe-types.js';
import { decodeJsonAnswer as decodeAnswer, type LanguageModule, type RunnerRequest } from './types.js';

/** Node's built-in modules the runner loads before the snapshot (so execs do not pay for them). */
export const NODE_PRELOAD = ['fs', 'path', 'crypto', 'util', 'buffer', 'events', 'zlib', 'stream', 'os', 'url',
  'assert', 'string_decoder', 'querystring', 'timers/promises', 'fs/promises', 'readline'];

/** The warm-up request's code (runner.js FORK_WARMUP): valid JavaScript that does nothing. */
export const JS_FORK_WARMUP = '/* forkbox: warm-up */';

export const NODE_RECIPE: Recipe = {
  name: 'javascript',
  packages: ['libc6', 'nodejs', 'libnode108', 'tzdata'],
  extraFiles: [
    { source: 'runner.js', path: '/opt/forkbox/runner.js' },
    { source: 'etc/passwd', path: '/etc/passwd' },
    { source: 'etc/group', path: '/etc/group' },
    { source: 'etc/nsswitch.conf', path: '/etc/nsswitch.conf' },
    { source: 'etc/hosts', path: '/etc/hosts' },
  ],
  // --no-memory-reducer: the reducer's timer set at template boot expires in every fork
  // (the clock has moved on since the snapshot) and ran a full GC in each first exec.
  argv: ['/usr/bin/node', '--v8-pool-size=1', '--max-semi-space-size=4', '--stack-size=4000', '--no-memory-reducer',
    '/opt/forkbox/runner.js', '--preload', NODE_PRELOAD.join(',')],
  env: {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    MALLOC_ARENA_MAX: '1',
    UV_THREADPOOL_SIZE: '1',
  },
  preload: NODE_PRELOAD,
  acceptedRefusals: [
    { file: 'ld-linux-x86-64.so.2', syscall: 72, why: "ld.so's private fcntl (F_GETOWN_EX buffer at -8(%rsp)); ld.so never calls it while loading node" },
    { file: 'ld-linux-x86-64.so.2', syscall: 13, why: "ld.so's private rt_sigaction; ld.so installs no signal handlers while loading node (libc's sigaction is rewritten)" },
    { file: 'libc.so.6', syscall: 131, why: '__longjmp_chk sigaltstack check: only when longjmp leaves an alternate signal stack; node never longjmps' },
  ],
  mustExist: ['/usr/bin/node', '/lib64/ld-linux-x86-64.so.2', '/usr/lib/x86_64-linux-gnu/libc.so.6',
    '/usr/lib/x86_64-linux-gnu/libnode.so.108', '/opt/forkbox/runner.js', '/etc/passwd'],
};

const encodeRequest = (r: RunnerRequest): Buffer => Buffer.from(JSON.stringify({
  code: r.code, env: r.env ?? {}, stdin: r.stdin ?? '',
  ...(r.session ? { session: true, reseed: r.reseed !== false } : {}),
  ...(r.cwd ? { cwd: r.cwd } : {}),
}), 'utf8');

export const javascript: LanguageModule = {
  name: 'javascript',
  aliases: ['js', 'node', 'nodejs'],
  recipe: NODE_RECIPE,
  // Measured: the runner idles at ~275 MiB of arena (V8's 128 MiB code range and its
  // heap reservations are arena pages here, never touched, so no host memory). The
  // exec's memory limit (default 512 MiB) bounds every arena page, idle ones included,
  // so RAM past limit + 128 MiB is never usable: 640 MiB, python's formula. A fork
  // writes ~1 MiB of it per exec.
  ramMb: 640,
  // a no-op program the runner answers by dry-running a typical one (output discarded)
  warmupCode: JS_FORK_WARMUP,
  encodeRequest,
  decodeAnswer,
};

type Ts = typeof import('typescript');
let tsLib: Ts | undefined;
/** typescript is loaded on first use (it is ~9 MB of JavaScript): servers that never see TS never pay. */
const loadTs = (): Ts => (tsLib ??= createRequire(import.meta.url)('typescript') as Ts);

/** Strips types (no type check): the program's syntax errors come back as its stderr. */
export function transpileTypeScript(code: string): { code: string } | { error: string } {
  const ts = loadTs();
  const out = ts.transpileModule(code, {
    reportDiagnostics: true,
    fileName: 'main.ts',
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, sourceMap: false, removeComments: false,
      isolatedModules: true, esModuleInterop: true },
  });
  const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error
    && d.code !== 1375 && d.code !== 1378); // top-level await: the runner supports it in any module mode
  if (errors.length > 0) {
    const text = errors.map((d) => {
      const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      if (!d.file || d.start === undefined) return `main.ts: error TS${d.code}: ${msg}`;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      return `main.ts(${line + 1},${character + 1}): error TS${d.code}: ${msg}`;
    }).join('\n');
    return { error: text + '\n' };
  }
  return { code: out.outputText };
}

export const typescript: LanguageModule = {
  ...javascript,
  name: 'typescript',
  aliases: ['ts'],
  prepare: transpileTypeScript,
};
