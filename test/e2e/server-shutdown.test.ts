// server-shutdown.test.ts — graceful shutdown of a real `forkbox serve` on the
// real engine: on SIGTERM a short in-flight exec still finishes (200), a
// spinning one is cancelled after the grace period (503 ShuttingDown), new
// work is refused, every VM is released and the process exits 0. Without
// /dev/kvm: one "skipped:" line.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot } from '../../src/lib/paths.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: server shutdown e2e test: /dev/kvm is absent\n');
} else {
  describe('forkbox serve shutdown', { timeout: 40 * 60_000 }, () => {
    let child: ChildProcess | undefined;
    after(() => { if (child && child.exitCode === null) child.kill('SIGKILL'); });

    test('SIGTERM drains, cancels past the grace period, releases every VM', { timeout: 30 * 60_000 }, async () => {
      let log = '';
      child = spawn(process.execPath, [join(repoRoot, 'dist/src/cli/main.js'), 'serve', '--port', '0', '--shutdown-grace-ms', '1500', '--pool-size', '4'], {
        env: { ...process.env, FORKBOX_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
      const base = await new Promise<string>((resolve, reject) => {
        let out = '';
        child!.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /forkbox listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child!.once('exit', (c) => reject(new Error(`serve exited ${c}: ${log.slice(-3000)}`)));
      });
      assert.ok(log.includes('"auth.disabled"'), 'no keys: the start log says auth is off');
      const exec = (code: string, timeout = 60) => fetch(`${base}/v1/exec`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, timeout_seconds: timeout }),
      });
      const spin = exec('while True: pass');
      const short = exec('import time\nt = time.time()\nwhile time.time() - t < 0.6: pass\nprint("finished")');
      for (let i = 0; i < 500; i++) {
        const h = await (await fetch(`${base}/v1/health`)).json() as { admission: { running: number } };
        if (h.admission.running === 2) break;
        await sleep(10);
      }
      const exited = new Promise<number | null>((resolve) => child!.once('exit', (c) => resolve(c)));
      const t0 = performance.now();
      child.kill('SIGTERM');
      await sleep(50);
      const late = await exec('print(1)').then((r) => r.status, (e: Error) => (e.cause as { code?: string } | undefined)?.code ?? e.message);
      assert.ok(late === 503 || late === 'ECONNREFUSED', `new work after SIGTERM: ${late}`);
      const s = await short;
      assert.equal(s.status, 200);
      assert.equal(((await s.json()) as { stdout: string }).stdout, 'finished\n');
      const sp = await spin;
      assert.equal(sp.status, 503);
      assert.equal(((await sp.json()) as { code: string }).code, 'ShuttingDown');
      assert.equal(await exited, 0, log.slice(-3000));
      const took = performance.now() - t0;
      assert.ok(took >= 1400 && took < 10_000, `shutdown took ${took} ms`);
      const stopped = log.split('\n').filter((l) => l.includes('"server.stopped"')).map((l) => JSON.parse(l) as { liveForks: number });
      assert.equal(stopped.length, 1);
      assert.equal(stopped[0]!.liveForks, 0);
    });
  });
}
