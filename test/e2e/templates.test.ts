// templates.test.ts — templates served by name on /dev/kvm: python-data's
// stack (pandas, scikit-learn on iris, scipy.optimize, a matplotlib PNG,
// distinct RNG streams across forks), the API's template field (exec, batch,
// sessions, 400 on a base mismatch, 404 on an unknown name, health lists them),
// a user recipe built by the CLI and answered by name over HTTP after a
// restart, and bad recipes failing at the step that broke. Without /dev/kvm:
// one "skipped:" line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import { buildServer, type ForkboxServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig } from '../../src/server/config.js';
import { repoRoot } from '../../src/lib/paths.js';
import { buildTemplate, listTemplates } from '../../src/template/build.js';
import { buildImage } from '../../src/image/build.js';
import { imageRecipeOf, lockPathOf, readRecipeFile } from '../../src/template/recipe.js';

const run = promisify(execFile);
const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** Runs the CLI; resolves with its exit code and output (a failing command is a result here). */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { cwd: repoRoot, env: { ...process.env, FORKBOX_LOG_LEVEL: 'warn' },
      maxBuffer: 1 << 26 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: template e2e tests: /dev/kvm is absent\n');
} else {
  describe('templates by name', { timeout: 40 * 60_000 }, () => {
    let engine: ForkboxEngine;
    let server: ForkboxServer;
    const post = (url: string, payload: unknown) => server.app.inject({ method: 'POST', url, payload: payload as object });
    const data = async (code: string) => {
      const r = await post('/v1/exec', { code, template: 'python-data', timeout_seconds: 60 });
      assert.equal(r.statusCode, 200, r.body);
      const j = r.json() as { stdout: string; stderr: string; exit_code: number };
      assert.equal(j.exit_code, 0, j.stderr);
      return j.stdout;
    };

    before(async () => {
      engine = await createEngine({ templates: ['python', 'python-data'], poolSize: 2,
        onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
      server = buildServer({ engine, config: loadServerConfig([], {}), keys: parseKeyFile('') });
    }, { timeout: 30 * 60_000 });

    after(async () => {
      await server?.app.close();
      await engine?.close(1000);
    });

    test('python-data: pandas sums a column', async () => {
      assert.equal(await data("import pandas as pd; df = pd.DataFrame({'a': [1, 2, 3]}); print(df.a.sum())"), '6\n');
    });

    test('python-data: scikit-learn fitted on the bundled iris scores above 0.9', async () => {
      const out = await data([
        'from sklearn.datasets import load_iris',
        'from sklearn.linear_model import LogisticRegression',
        'from sklearn.ensemble import RandomForestClassifier',
        'X, y = load_iris(return_X_y=True)',
        'print(LogisticRegression(max_iter=1000).fit(X, y).score(X, y))',
        'print(RandomForestClassifier(n_estimators=20, n_jobs=2, random_state=0).fit(X, y).score(X, y))',
      ].join('\n'));
      const [lr, rf] = out.trim().split('\n').map(Number);
      assert.ok(lr! > 0.9, `logistic regression score ${lr}`);
      assert.ok(rf! > 0.9, `random forest (joblib threads) score ${rf}`);
    });

    test('python-data: scipy.optimize.minimize finds the minimum', async () => {
      const out = await data('from scipy.optimize import minimize\nr = minimize(lambda v: (v[0] - 3) ** 2 + (v[1] + 1) ** 2, [0, 0])\n'
        + 'print(r.success, round(r.x[0], 3), round(r.x[1], 3))');
      assert.equal(out, 'True 3.0 -1.0\n');
    });

    test('python-data: matplotlib (Agg) saves a PNG of the asked size to a BytesIO', async () => {
      const out = await data('import io, base64, matplotlib, matplotlib.pyplot as plt\nprint(matplotlib.get_backend())\n'
        + 'fig, ax = plt.subplots(figsize=(4, 3), dpi=50)\nax.plot([1, 2, 3], [3, 1, 2])\nb = io.BytesIO()\n'
        + "fig.savefig(b, format='png')\nprint(base64.b64encode(b.getvalue()).decode())");
      const [backend, b64] = out.trim().split('\n');
      assert.equal(backend?.toLowerCase(), 'agg');
      const png = Buffer.from(b64!, 'base64');
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
      assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
      assert.equal(png.readUInt32BE(16), 200, 'width = 4 in × 50 dpi');
      assert.equal(png.readUInt32BE(20), 150, 'height = 3 in × 50 dpi');
    });

    test('python-data: a program has the room it has in python (400 MiB array beside the ~220 MiB preloaded heap)', async () => {
      assert.equal(await data('import numpy as np\na = np.ones(400 * 2**20 // 8)\nprint(int(a.sum()))'), `${400 * 2 ** 20 / 8}\n`);
    });

    test('python-data: numpy and pandas default RNGs differ across 10 forks', async () => {
      const code = 'import numpy as np, pandas as pd\nprint(np.random.randint(0, 2**62), np.random.default_rng().integers(0, 2**62), '
        + "pd.DataFrame({'a': range(10**6)}).sample().a.iloc[0], pd.Series(range(10**6)).sample(3).tolist())";
      const rs = await Promise.all(Array.from({ length: 10 }, () => post('/v1/exec', { code, template: 'python-data' })));
      const rows = rs.map((r) => { assert.equal(r.statusCode, 200); return (r.json() as { stdout: string }).stdout.trim(); });
      for (let col = 0; col < 3; col++) {
        const vals = rows.map((row) => row.split(' ')[col]);
        assert.equal(new Set(vals).size, 10, `column ${col} distinct across forks: ${vals.join(', ')}`);
      }
    });

    test('batch and sessions take a template; the session keeps it', async () => {
      const b = await post('/v1/exec/batch', { executions: [
        { code: 'import sys; print("pandas" in sys.modules)', template: 'python-data' },
        { code: 'import sys; print("pandas" in sys.modules)' },
      ] });
      assert.equal(b.statusCode, 200, b.body);
      assert.deepEqual((b.json() as { results: Array<{ stdout: string }> }).results.map((r) => r.stdout), ['True\n', 'False\n']);
      const s = await post('/v1/sessions', { template: 'python-data' });
      assert.equal(s.statusCode, 201, s.body);
      const sj = s.json() as { id: string; template: string; language: string };
      assert.equal(sj.template, 'python-data');
      assert.equal(sj.language, 'python');
      const e1 = await post(`/v1/sessions/${sj.id}/exec`, { code: "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})" });
      assert.equal(e1.statusCode, 200, e1.body);
      const e2 = await post(`/v1/sessions/${sj.id}/exec`, { code: 'print(df.a.sum())' });
      assert.equal((e2.json() as { stdout: string }).stdout, '3\n');
      const wrong = await post(`/v1/sessions/${sj.id}/exec`, { code: 'print(1)', template: 'python' });
      assert.equal(wrong.statusCode, 400);
      assert.match(wrong.body, /runs python-data/);
      await server.app.inject({ method: 'DELETE', url: `/v1/sessions/${sj.id}` });
      const plain = await post('/v1/sessions', {});
      assert.equal((plain.json() as { template: string }).template, 'python');
      await server.app.inject({ method: 'DELETE', url: `/v1/sessions/${(plain.json() as { id: string }).id}` });
    });

    test('a template of another base is 400; an unknown template is 404 naming the known ones', async () => {
      const m = await post('/v1/exec', { code: 'console.log(1)', language: 'javascript', template: 'python-data' });
      assert.equal(m.statusCode, 400, m.body);
      assert.match((m.json() as { error: string }).error, /template "python-data" runs python, not javascript/);
      const u = await post('/v1/exec', { code: 'print(1)', template: 'no-such-template' });
      assert.equal(u.statusCode, 404, u.body);
      assert.match((u.json() as { error: string }).error, /unknown template "no-such-template".*python, python-data/);
      const bad = await post('/v1/exec', { code: 'print(1)', template: '../etc' });
      assert.equal(bad.statusCode, 400);
      const s = await post('/v1/sessions', { template: 'no-such-template' });
      assert.equal(s.statusCode, 404, s.body);
    });

    test('the TypeScript and Python SDKs take template on run, batch and session create', async () => {
      const listening = buildServer({ engine, config: { ...loadServerConfig([], {}), rateLimit: 0 }, keys: parseKeyFile('') });
      await listening.app.listen({ host: '127.0.0.1', port: 0 });
      const base = `http://127.0.0.1:${(listening.app.server.address() as { port: number }).port}`;
      try {
        const sdk = await import(join(repoRoot, 'sdk/js/lib/index.js'));
        const sb = new sdk.Sandbox('', base);
        const probe = 'import sys; print("pandas" in sys.modules)';
        assert.equal((await sb.run(probe, { template: 'python-data' })).stdout, 'True\n');
        assert.equal((await sb.run(probe)).stdout, 'False\n');
        const [a] = await sb.runBatch([{ code: probe, template: 'python-data' }]);
        assert.equal(a.stdout, 'True\n');
        const session = await sdk.Sandbox.create({ template: 'python-data', apiKey: '', baseUrl: base });
        try {
          assert.equal((await session.run(probe)).stdout, 'True\n');
          assert.equal((await session.info()).template, 'python-data');
        } finally {
          await session.kill();
        }
        const script = [
          'import sys', 'from forkbox import Sandbox',
          'sb = Sandbox(api_key="", base_url=sys.argv[1])',
          'code = "import sys; print(\'pandas\' in sys.modules)"',
          'print(sb.run(code, template="python-data").stdout.strip(), sb.run(code).stdout.strip(),',
          '      sb.run_batch([{"code": code, "template": "python-data"}])[0].stdout.strip())',
          's = Sandbox.create(template="python-data", api_key="", base_url=sys.argv[1])',
          'print(s.run(code).stdout.strip(), s.info().template)',
          's.kill()',
        ].join('\n');
        const p = await run('python3', ['-c', script, base], {
          env: { ...process.env, PYTHONPATH: join(repoRoot, 'sdk/python'), PYTHONDONTWRITEBYTECODE: '1' }, timeout: 120_000 });
        assert.equal(p.stdout, 'True False True\nTrue python-data\n');
      } finally {
        await listening.app.close();
      }
    });

    test('health lists every template with its base, readiness and key', async () => {
      const h = await server.app.inject({ method: 'GET', url: '/v1/health' });
      const t = (h.json() as { templates: Record<string, { ready: boolean; base: string; key: string }> }).templates;
      assert.deepEqual(Object.keys(t).sort(), ['python', 'python-data']);
      assert.equal(t['python-data']!.base, 'python');
      assert.equal(t['python-data']!.ready, true);
      assert.match(t['python-data']!.key, /^[0-9a-f]{64}$/);
      assert.notEqual(t['python-data']!.key, t.python!.key);
    });
  });

  describe('user recipes', { timeout: 40 * 60_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'fb-recipes-'));

    test('a recipe (python3-sympy preloaded) builds with the CLI, pins a lock, and answers by name over HTTP', { timeout: 30 * 60_000 }, async () => {
      writeFileSync(join(dir, 'helper.py'), 'ANSWER = 42\n');
      const file = join(dir, 'sympy.yaml');
      writeFileSync(file, [
        // libubsan1: its syscall wrappers keep data in the red zone, so the rewriter refuses two sites (a user's recipe still builds)
        'name: e2e-sympy', 'base: python', 'packages: [python3-sympy, libubsan1]', 'preload: [sympy]',
        'warmup: |', '  import sympy', '  sympy.integrate(sympy.Symbol("x") ** 2)',
        'env:', '  GREETING: hello', 'files:', '  - {path: /usr/lib/python3/dist-packages/e2e_helper.py, source: helper.py}',
        'warmForks: 1', '',
      ].join('\n'));
      const b = await cli(['template', 'build', file]);
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stdout, /(built|cached) e2e-sympy template/);
      assert.match(b.stdout, /ELF files with rewritten syscall sites: \d+\n( {2}\S+: \d+\n)* {2}\S*libc\.so\.6: \d+\n/);
      assert.match(b.stdout, /^ {2}\S*libubsan\.so\.1[.\d]*: \d+$/m, 'libubsan is listed among the rewritten files');
      assert.match(b.stdout, /^refused syscall sites \(a sandbox that reaches one crashes[^\n]*: [1-9]\d*\n {2}\S*libubsan\.so\S* 0x[0-9a-f]+ \(syscall \d+\): red zone/m);
      const lock = JSON.parse(readFileSync(`${file}.lock.json`, 'utf8')) as { packages: Array<{ name: string; version: string }> };
      assert.ok(lock.packages.some((p) => p.name === 'python3-sympy'), 'the lock pins python3-sympy');
      const again = await cli(['template', 'build', file]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /using the \d+ package versions pinned in/);
      assert.match(again.stdout, /cached e2e-sympy/);
      const ls = await cli(['template', 'ls']);
      assert.match(ls.stdout, /^e2e-sympy +python /m);

      // The manifest pins the closure the lock pinned, so a rebuild without the recipe file (forkbox serve
      // after a runtime upgrade) gets the same versions: the pinned closure names this template's image,
      // and one changed version names an image that does not exist.
      const built = (await listTemplates()).find((t) => t.name === 'e2e-sympy');
      const pinned = built?.manifest.pinned;
      assert.deepEqual(pinned?.map((p) => `${p.name}=${p.version}`).sort(), lock.packages.map((p) => `${p.name}=${p.version}`).sort());
      const asResolved = (ps: NonNullable<typeof pinned>) => ps.map((p) => ({ ...p, filename: '', size: 0 }));
      const img = await buildImage(imageRecipeOf(readRecipeFile(file)), { cachedOnly: true, pinned: asResolved(pinned!), onProgress: () => {} });
      assert.equal(img.key, built!.manifest.inputs.imageKey);
      const drifted = asResolved(pinned!).map((p) => (p.name === 'python3-sympy' ? { ...p, version: `${p.version}+drift` } : p));
      await assert.rejects(buildImage(imageRecipeOf(readRecipeFile(file)), { cachedOnly: true, pinned: drifted, onProgress: () => {} }), /is not built/);

      // A fresh engine (what `forkbox serve` runs) finds the built template in the cache.
      const engine = await createEngine({ templates: ['python', 'e2e-sympy'], poolSize: 1 });
      try {
        await engine.ready();
        const server = buildServer({ engine, config: loadServerConfig([], {}), keys: parseKeyFile('') });
        try {
          const r = await server.app.inject({ method: 'POST', url: '/v1/exec', payload: {
            template: 'e2e-sympy',
            code: 'import os, sys, sympy, e2e_helper\nx = sympy.Symbol("x")\nprint(sympy.integrate(x ** 2, x), "sympy" in sys.modules, '
              + 'os.environ["GREETING"], e2e_helper.ANSWER)',
          } });
          assert.equal(r.statusCode, 200, r.body);
          const j = r.json() as { stdout: string; stderr: string };
          assert.equal(j.stdout, 'x**3/3 True hello 42\n', j.stderr);
          const h = (await server.app.inject({ method: 'GET', url: '/v1/health' })).json() as { templates: Record<string, { base: string; ready: boolean }> };
          assert.deepEqual(h.templates['e2e-sympy'], { ...h.templates['e2e-sympy'], base: 'python', ready: true });
        } finally {
          await server.app.close();
        }
      } finally {
        await engine.close(1000);
      }
      const rm = await cli(['template', 'rm', 'e2e-sympy']);
      assert.equal(rm.code, 0, rm.stderr);
      assert.doesNotMatch((await cli(['template', 'ls'])).stdout, /^e2e-sympy /m);
    });

    test('a javascript recipe (node-semver preloaded, a warm-up) builds through the builder API and serves JS and TS', { timeout: 30 * 60_000 }, async () => {
      const file = join(dir, 'semver.json');
      writeFileSync(file, JSON.stringify({ name: 'e2e-semver', base: 'javascript', packages: ['node-semver'], preload: ['semver'],
        warmup: 'globalThis.warmedUp = require("semver").valid("1.2.3");\n' }));
      const t = await buildTemplate(readRecipeFile(file), { lockPath: lockPathOf(file), onProgress: () => {} });
      assert.equal(t.name, 'e2e-semver');
      assert.ok(existsSync(`${file}.lock.json`));
      const engine = await createEngine({ templates: ['e2e-semver'], poolSize: 0, warmForks: 0 });
      try {
        await engine.ready();
        const code = 'console.log(require("semver").gt("1.2.4", "1.2.3"), globalThis.warmedUp)';
        const js = await engine.exec({ code, language: 'javascript', template: 'e2e-semver', timeoutSeconds: 30 });
        assert.equal(js.stdout, 'true 1.2.3\n', js.stderr);
        const ts = await engine.exec({ code: 'const v: string = require("semver").inc("1.2.3", "minor"); console.log(v)',
          language: 'typescript', template: 'e2e-semver', timeoutSeconds: 30 });
        assert.equal(ts.stdout, '1.3.0\n', ts.stderr);
        await assert.rejects(engine.exec({ code: 'print(1)', language: 'python', template: 'e2e-semver', timeoutSeconds: 5 }),
          /template "e2e-semver" runs javascript, not python/);
      } finally {
        await engine.close(1000);
      }
      assert.equal((await cli(['template', 'rm', 'e2e-semver'])).code, 0);
    });

    test('a pinned version the archive no longer has is named at the download step', async () => {
      const file = join(dir, 'gone.yaml');
      writeFileSync(file, 'name: e2e-gone\nbase: python\npackages: [python3-six]\n');
      const lock = { lockVersion: 1, recipe: 'e2e-gone', exclude: [], roots: ['libc6', 'python3.11-minimal', 'libpython3.11-stdlib',
        'python3-numpy', 'libblas3', 'liblapack3', 'tzdata', 'python3-six'],
        packages: [{ name: 'python3-six', version: '0.0.1-forkbox-never', arch: 'all', sha256: 'b'.repeat(64) }] };
      writeFileSync(`${file}.lock.json`, JSON.stringify(lock));
      const r = await cli(['template', 'build', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /download step: pinned in .*gone\.yaml\.lock\.json but no longer obtainable: python3-six=0\.0\.1-forkbox-never/);
    });

    test('an unknown package fails the resolve step', async () => {
      const file = join(dir, 'nopkg.json');
      writeFileSync(file, JSON.stringify({ name: 'e2e-nopkg', base: 'python', packages: ['python3-forkbox-no-such-package'] }));
      const r = await cli(['template', 'build', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /resolve step: .*python3-forkbox-no-such-package/);
    });

    test('a failing preload fails the preload step with the Python traceback', { timeout: 10 * 60_000 }, async () => {
      const file = join(dir, 'nopre.yaml');
      writeFileSync(file, 'name: e2e-nopre\nbase: python\npreload: [forkbox_no_such_module]\n');
      const r = await cli(['template', 'build', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /template e2e-nopre: preload step failed/);
      assert.match(r.stderr, /Traceback \(most recent call last\):[\s\S]*ModuleNotFoundError: No module named 'forkbox_no_such_module'/);
    });

    test('a schema error names the field and builds nothing', async () => {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, 'name: e2e-bad\nbase: python\nramMb: lots\n');
      const r = await cli(['template', 'build', file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /recipe .*bad\.yaml: ramMb: must be an integer/);
      const s = await cli(['template', 'build', join(dir, 'shadow.yaml')]);
      assert.equal(s.code, 2);
      writeFileSync(join(dir, 'shadow.yaml'), 'name: python\nbase: python\n');
      const sh = await cli(['template', 'build', join(dir, 'shadow.yaml')]);
      assert.equal(sh.code, 2);
      assert.match(sh.stderr, /name: "python" is a shipped template/);
    });
  });
}
