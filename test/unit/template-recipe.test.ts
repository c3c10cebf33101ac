// template-recipe.test.ts — recipe files (src/template/recipe.ts): JSON and
// YAML parse to one shape, every schema error names its field, files are read
// relative to the recipe, the shipped templates map onto the image recipes
// (python's unchanged, so its cache key holds), and lock files (src/image/lock.ts)
// pin, are re-resolved when the packages change, and are refused when malformed;
// the server option for warm forks per template parses NAME=N.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { imageRecipeOf, lockPathOf, parseRecipe, readRecipeFile } from '../../src/template/recipe.js';
import { PYTHON_DATA, SHIPPED_TEMPLATES, shippedTemplate } from '../../src/template/shipped.js';
import { PYTHON_RECIPE } from '../../src/languages/python.js';
import { NODE_RECIPE } from '../../src/languages/javascript.js';
import { readLock, writeLock, validateLock } from '../../src/image/lock.js';
import { ForkboxError } from '../../src/lib/errors.js';

const YAML = `name: py-sympy
base: python
packages: [python3-sympy]
preload:
  - sympy
warmup: |
  import sympy
env:
  GREETING: hello
  LEVEL: 3
files:
  - path: /opt/data/a.txt
    content: "hi\\n"
ramMb: 768
warmForks: 1
`;

test('a YAML recipe and the same JSON recipe give one shape', () => {
  const y = parseRecipe(YAML, 'r.yaml');
  const j = parseRecipe(JSON.stringify({ name: 'py-sympy', base: 'python', packages: ['python3-sympy'], preload: ['sympy'],
    warmup: 'import sympy\n', env: { GREETING: 'hello', LEVEL: 3 }, files: [{ path: '/opt/data/a.txt', content: 'hi\n' }],
    ramMb: 768, warmForks: 1 }), 'r.json');
  assert.deepEqual(y, j);
  assert.equal(y.env.LEVEL, '3');
  assert.equal(Buffer.from(y.files[0]!.content, 'base64').toString(), 'hi\n');
  assert.equal(y.shipped, false);
});

test('schema errors name the field', () => {
  const cases: Array<[string, RegExp]> = [
    ['base: python\n', /: name: required/],
    ['name: Bad_Name\nbase: python\n', /: name: /],
    ['name: ok\nbase: ruby\n', /: base: required: one of python, javascript/],
    ['name: ok\nbase: python\npackages: python3-sympy\n', /: packages: must be a list/],
    ['name: ok\nbase: python\npackages: ["python3 sympy"]\n', /: packages\[0\]: /],
    ['name: ok\nbase: python\npreload: [1]\n', /: preload\[0\]: /],
    ['name: ok\nbase: python\nramMb: 12\n', /: ramMb: must be an integer from 256/],
    ['name: ok\nbase: python\nwarmForks: -1\n', /: warmForks: /],
    ['name: ok\nbase: python\nenv: {"1X": a}\n', /: env\.1X: /],
    ['name: ok\nbase: python\nfiles: [{path: relative.txt, content: x}]\n', /: files\[0\]\.path: /],
    ['name: ok\nbase: python\nfiles: [{path: /a/../b, content: x}]\n', /: files\[0\]\.path: /],
    ['name: ok\nbase: python\nfiles: [{path: /a}]\n', /: files\[0\]: needs exactly one of content/],
    ['name: ok\nbase: python\nfiles: [{path: /a, source: nope.txt}]\n', /: files\[0\]\.source: cannot read nope\.txt: ENOENT/],
    ['name: ok\nbase: python\nwarmup: [1]\n', /: warmup: /],
    ['name: ok\nbase: python\npackage: [x]\n', /: package: unknown field/],
    ['- a list\n', /must be a mapping/],
    ['name: [unclosed\n', /not valid YAML/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseRecipe(text, 'bad.yaml', { dir: tmpdir() }), (e: unknown) => {
      assert.ok(e instanceof ForkboxError, text);
      assert.equal(e.status, 400);
      assert.match(e.message, /^recipe bad\.yaml: /);
      assert.match(e.message, re, text);
      return true;
    });
  }
  assert.throws(() => parseRecipe('{"name": ', 'bad.json'), /not valid JSON/);
});

test('files[].source is read relative to the recipe file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-recipe-'));
  writeFileSync(join(dir, 'helper.py'), 'X = 42\n');
  writeFileSync(join(dir, 't.yml'), 'name: t\nbase: python\nfiles:\n  - {path: /opt/lib/helper.py, source: helper.py, executable: true}\n');
  const r = readRecipeFile(join(dir, 't.yml'));
  assert.equal(Buffer.from(r.files[0]!.content, 'base64').toString(), 'X = 42\n');
  assert.equal(r.files[0]!.executable, true);
  assert.equal(lockPathOf(join(dir, 't.yml')), join(dir, 't.yml.lock.json'));
});

test('shipped python and javascript are their languages\' image recipes, unchanged', () => {
  assert.equal(imageRecipeOf(shippedTemplate('python')!), PYTHON_RECIPE);
  assert.equal(imageRecipeOf(shippedTemplate('javascript')!), NODE_RECIPE);
  assert.deepEqual(SHIPPED_TEMPLATES.map((t) => t.name), ['python', 'javascript', 'python-data']);
});

test('a template recipe adds to its base: packages, preloads (warm-up last), files, env; user recipes report refusals', () => {
  const r = imageRecipeOf(PYTHON_DATA);
  for (const p of PYTHON_RECIPE.packages) assert.ok(r.packages.includes(p), p);
  assert.ok(r.packages.includes('python3-pandas'));
  assert.deepEqual(r.exclude, PYTHON_DATA.exclude);
  assert.equal(r.preload.at(-1), '_forkbox_warmup');
  assert.ok(r.preload.includes('numpy') && r.preload.includes('pandas'));
  const i = r.argv.indexOf('--preload');
  assert.equal(r.argv[i + 1], r.preload.join(','));
  assert.equal(r.env.MPLBACKEND, 'Agg');
  assert.equal(r.env.LANG, 'C.UTF-8');
  assert.ok(r.extraFiles.some((f) => f.path === '/usr/lib/python3/dist-packages/_forkbox_warmup.py' && f.content));
  assert.ok(r.extraFiles.some((f) => f.path === '/opt/forkbox/runner.py'));
  assert.equal(r.reportRefusals, undefined, 'shipped: refusals must be on the accepted list');
  const user = imageRecipeOf(parseRecipe(YAML, 'r.yaml'));
  assert.equal(user.reportRefusals, true);
  assert.equal(user.env.GREETING, 'hello');
  assert.deepEqual(user.acceptedRefusals, PYTHON_RECIPE.acceptedRefusals);
});

const pkg = (name: string, version: string) => ({ name, version, arch: 'amd64', sha256: 'a'.repeat(64), filename: `pool/${name}.deb`, size: 1 });

test('a lock pins the closure while the recipe asks for the same packages', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-lock-'));
  const path = join(dir, 'r.yaml.lock.json');
  const recipe = imageRecipeOf(parseRecipe(YAML, 'r.yaml'));
  assert.equal(await readLock(path, recipe), undefined, 'no lock yet');
  await writeLock(path, recipe, [pkg('libc6', '2.36-9'), pkg('python3-sympy', '1.11.1-1')]);
  const got = await readLock(path, recipe);
  assert.deepEqual(got?.map((p) => `${p.name}=${p.version}`), ['libc6=2.36-9', 'python3-sympy=1.11.1-1']);
  // packages changed: resolve again (undefined), the caller rewrites the lock
  assert.equal(await readLock(path, { ...recipe, packages: [...recipe.packages, 'python3-tz'] }), undefined);
  assert.equal(await readLock(path, { ...recipe, exclude: ['tzdata'] }), undefined);
  // a malformed lock is refused, naming the file
  const doc = JSON.parse(readFileSync(path, 'utf8'));
  doc.packages[0].sha256 = 'zz';
  writeFileSync(path, JSON.stringify(doc));
  await assert.rejects(readLock(path, recipe), /lock file .*packages\[0\] needs .* sha256.*delete it/);
  writeFileSync(path, '{');
  await assert.rejects(readLock(path, recipe), /not valid JSON/);
  assert.throws(() => validateLock({ lockVersion: 9 }, 'x'), /lockVersion must be 1/);
});

test('--template-warm-forks sets warm forks per template; a malformed entry names the option', async () => {
  const { loadServerConfig } = await import('../../src/server/config.js');
  const { engineOptions } = await import('../../src/cli/serve.js');
  const cfg = loadServerConfig(['--template-warm-forks', 'python-data=4,javascript=0'], {});
  assert.deepEqual(engineOptions(cfg).templateWarmForks, { 'python-data': 4, javascript: 0 });
  assert.equal(engineOptions(loadServerConfig([], {})).templateWarmForks, undefined);
  assert.deepEqual(loadServerConfig([], { FORKBOX_TEMPLATE_WARM_FORKS: 'py-sympy=2' }).templateWarmForks, ['py-sympy=2']);
  assert.throws(() => loadServerConfig(['--template-warm-forks', 'python-data'], {}), /--template-warm-forks: "python-data" is not NAME=N/);
});
