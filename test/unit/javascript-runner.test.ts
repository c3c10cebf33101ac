// javascript-runner.test.ts — the JavaScript module and guest/runner.js agree on the
// fork warm-up request (a drift would turn every warm-up into a plain no-op: still
// correct, but each user exec would pay the first-touch cost again), and the recipe
// keeps the V8 flags the snapshot's cost depends on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { guestFilesDir } from '../../src/lib/paths.js';
import { javascript, JS_FORK_WARMUP, NODE_RECIPE } from '../../src/languages/javascript.js';

test('the warm-up code is the runner\'s FORK_WARMUP, and valid JavaScript that does nothing', () => {
  const runner = readFileSync(join(guestFilesDir, 'runner.js'), 'utf8');
  const m = /^const FORK_WARMUP = '([^']*)';$/m.exec(runner);
  assert.ok(m, 'runner.js defines FORK_WARMUP');
  assert.equal(m[1], JS_FORK_WARMUP);
  assert.equal(javascript.warmupCode, JS_FORK_WARMUP);
  assert.equal(new Function(JS_FORK_WARMUP)(), undefined); // eslint-disable-line no-new-func
});

test('the recipe runs node without the memory reducer (its timer fired a full GC in every fork)', () => {
  assert.ok(NODE_RECIPE.argv.includes('--no-memory-reducer'));
  assert.ok(NODE_RECIPE.argv.indexOf('--no-memory-reducer') < NODE_RECIPE.argv.indexOf('/opt/forkbox/runner.js'));
});
