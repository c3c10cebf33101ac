// javascript.ts — JavaScript on Debian's own Node.js 18 (nodejs + libnode108 and
// their closure, syscalls rewritten like every binary of an image), the runner
// guest/runner.js (same contract as runner.py: JSON requests from /dev/forkbox,
// answer {"exit_code": n[, "result": inspect]}), and TypeScript as a second
// module whose prepare() strips types on the host (typescript's transpileModule).
import ts from 'typescript';
import type { Recipe } from '../image/recipes.js';
import type { LanguageModule, RunnerAnswer, RunnerRequest } from './types.js';

/** Node's built-in modules the runner loads before the snapshot (so execs do not pay for them). */
export const NODE_PRELOAD = ['fs', 'path', 'crypto', 'util', 'buffer', 'events', 'zlib', 'stream', 'os', 'url',
  'assert', 'string_decoder', 'querystring', 'timers/promises', 'fs/promises', 'readline'];

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
  argv: ['/usr/bin/node', '--v8-pool-size=1', '--max-semi-space-size=4', '--stack-size=4000',
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
