// python.ts — the Python language: Debian's python3.11 with numpy, the runner
// guest/runner.py (preloads, then serves JSON requests from /dev/forkbox and
// answers {"exit_code": n[, "result": repr]}), 640 MiB of template RAM.
import type { Recipe } from '../image/recipe-types.js';
import { decodeJsonAnswer as decodeAnswer, type LanguageModule, type RunnerRequest } from './types.js';

/** Modules the python runner imports before the snapshot (so execs do not pay for them). */
export const PYTHON_PRELOAD = [
  'numpy', 'json', 're', 'math', 'cmath', 'random', 'statistics', 'decimal', 'fractions', 'collections',
  'itertools', 'functools', 'operator', 'datetime', 'time', 'string', 'textwrap', 'io', 'csv', 'struct',
  'base64', 'hashlib', 'hmac', 'heapq', 'bisect', 'copy', 'dataclasses', 'typing', 'enum', 'pprint',
  'traceback', 'uuid', 'secrets', 'tempfile', 'pathlib', 'zlib', 'unicodedata', 'array', 'contextlib',
];

export const PYTHON_RECIPE: Recipe = {
  name: 'python',
  // tzdata: zoneinfo.ZoneInfo('Europe/Paris') needs /usr/share/zoneinfo (no /etc/localtime: UTC).
  packages: ['libc6', 'python3.11-minimal', 'libpython3.11-stdlib', 'python3-numpy', 'libblas3', 'liblapack3', 'tzdata'],
  // The runtime reports uid/gid 1000: give it a name (getpass.getuser, pwd, ~user).
  extraFiles: [
    { source: 'runner.py', path: '/opt/forkbox/runner.py' },
    { source: 'etc/passwd', path: '/etc/passwd' },
    { source: 'etc/group', path: '/etc/group' },
    { source: 'etc/nsswitch.conf', path: '/etc/nsswitch.conf' },
    { source: 'etc/hosts', path: '/etc/hosts' },
  ],
  // -I: isolated (no PYTHON* variables, no user site, no script dir in sys.path); -B: no .pyc writes.
  // Note -I also ignores PYTHONHASHSEED: the str hash seed is drawn once at template boot and is
  // therefore shared by every fork of the template (see docs/image-format.md).
  argv: ['/usr/bin/python3.11', '-I', '-B', '/opt/forkbox/runner.py', '--preload', PYTHON_PRELOAD.join(',')],
  env: {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    OPENBLAS_NUM_THREADS: '1',
    // one CPU: threads share the main malloc arena (a per-thread arena reserves 128 MiB, scanned on mmap)
    MALLOC_ARENA_MAX: '1',
  },
  preload: PYTHON_PRELOAD,
  acceptedRefusals: [
    { file: 'ld-linux-x86-64.so.2', syscall: 72, why: "ld.so's private fcntl (F_GETOWN_EX buffer at -8(%rsp)); ld.so never calls it while loading python" },
    { file: 'ld-linux-x86-64.so.2', syscall: 13, why: "ld.so's private rt_sigaction; ld.so installs no signal handlers while loading python (libc's sigaction is rewritten)" },
    { file: 'libc.so.6', syscall: 131, why: '__longjmp_chk sigaltstack check: only when longjmp leaves an alternate signal stack; python never longjmps' },
  ],
  mustExist: ['/usr/bin/python3.11', '/lib64/ld-linux-x86-64.so.2', '/usr/lib/x86_64-linux-gnu/libc.so.6',
    '/usr/lib/x86_64-linux-gnu/libblas.so.3', '/usr/lib/x86_64-linux-gnu/liblapack.so.3', '/opt/forkbox/runner.py',
    '/usr/lib/python3/dist-packages/numpy/__init__.py', '/usr/lib/python3.11/__pycache__/os.cpython-311.pyc', '/etc/passwd',
    '/usr/share/zoneinfo/Europe/Paris'],
};

export const python: LanguageModule = {
  name: 'python',
  aliases: ['python3', 'py'],
  recipe: PYTHON_RECIPE,
  ramMb: 640,
  warmupCode: "print(end='')",
  encodeRequest: (r: RunnerRequest): Buffer => Buffer.from(JSON.stringify({
    code: r.code, env: r.env ?? {}, stdin: r.stdin ?? '',
    ...(r.session ? { session: true, reseed: r.reseed !== false } : {}),
    ...(r.cwd ? { cwd: r.cwd } : {}),
  }), 'utf8'),
  decodeAnswer,
};
