// compile.ts — byte-compiles the image's Python sources with the image's own
// (still unrewritten) python3.11, run on the host through the image's ld.so.
// Unchecked-hash .pyc files are used as-is without comparing source mtimes,
// and -s/-p record in-image paths (/usr/lib/...) in the code objects. This must
// run before the syscall rewrite: a rewritten libc no longer runs on a host.
import { execFile } from 'node:child_process';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PY_SOURCE_DIRS = ['/usr/lib/python3.11', '/usr/lib/python3/dist-packages'];

/** argv prefix that runs the image's python3.11 on the host. */
export function hostPythonArgv(rootfs: string): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
  const libPath = ['usr/lib/x86_64-linux-gnu', 'usr/lib'].map((d) => join(rootfs, d)).join(':');
  return {
    // Not /lib64/ld-linux-x86-64.so.2: in the tree that is an absolute link, i.e. the host's.
    cmd: join(rootfs, 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'),
    args: ['--library-path', libPath, join(rootfs, 'usr/bin/python3.11')],
    // PYTHONHOME points the interpreter at the staging tree's stdlib (so no -I/-E here); no
    // bytecode from the compiler's own imports (timestamp-based, and compileall would keep them).
    env: { PATH: '/usr/bin:/bin', LC_ALL: 'C.UTF-8', PYTHONHOME: join(rootfs, 'usr'), PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1',
      // Reproducible .pyc: frozenset constants are marshalled in hash order.
      PYTHONHASHSEED: '0' },
  };
}

export async function compilePython(rootfs: string, jobs = 1): Promise<void> {
  const py = hostPythonArgv(rootfs);
  for (const p of [py.cmd, py.args[2]!]) {
    if (!(await lstat(p).catch(() => undefined))) throw new Error(`cannot byte-compile: ${p} is missing from the staging tree`);
  }
  try {
    await run(py.cmd, [...py.args, '-c', 'import sys; assert sys.version_info[:2] == (3, 11), sys.version'], { env: py.env });
  } catch (e) {
    throw new Error(`cannot run the image's python3.11 on this host to byte-compile: ${(e as { stderr?: string }).stderr || String(e)}`);
  }
  const dirs = [];
  for (const d of PY_SOURCE_DIRS) if (await lstat(join(rootfs, d)).catch(() => undefined)) dirs.push(join(rootfs, d));
  try {
    await run(py.cmd, [...py.args, '-m', 'compileall', '-q', `-j${jobs}`, '-f', '--invalidation-mode', 'unchecked-hash',
      '-s', rootfs, '-p', '/', ...dirs], { env: py.env, maxBuffer: 16 << 20 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`byte-compiling failed: ${((err.stdout ?? '') + (err.stderr ?? '')).trim().slice(0, 2000) || String(e)}`);
  }
}
