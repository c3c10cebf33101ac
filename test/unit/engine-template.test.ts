// engine-template.test.ts — the template cache without a VM: listing reads
// manifests (incomplete dirs are ignored), pruning keeps the current key and
// the newest older one, and benchmark percentiles are computed correctly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listTemplates, pruneTemplates } from '../../src/template/build.js';
import { dist } from '../../src/cli/bench.js';

function fake(root: string, key: string, name: string, created: string, complete = true): void {
  const d = join(root, key);
  mkdirSync(d);
  writeFileSync(join(d, 'manifest.json'), JSON.stringify({ name, key, created, sizes: { memory: 1, state: 1 } }));
  if (complete) {
    writeFileSync(join(d, 'memory'), '');
    writeFileSync(join(d, 'state'), '');
  }
}

test('listTemplates: newest first, incomplete and temp dirs ignored', async () => {
  const root = mkdtempSync(join(tmpdir(), 'forkbox-tpl-'));
  try {
    fake(root, 'a', 'python', '2026-01-01T00:00:00Z');
    fake(root, 'b', 'python', '2026-01-03T00:00:00Z');
    fake(root, 'c', 'python', '2026-01-02T00:00:00Z', false);
    mkdirSync(join(root, '.tmp-x'));
    const l = await listTemplates(root, { verify: false });
    assert.deepEqual(l.map((t) => t.key), ['b', 'a']);
    assert.equal(l[0]!.memPath, join(root, 'b', 'memory'));
    assert.deepEqual(await listTemplates(join(root, 'missing'), { verify: false }), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('pruneTemplates keeps the current key and the newest other one of that name', async () => {
  const root = mkdtempSync(join(tmpdir(), 'forkbox-tpl-'));
  try {
    fake(root, 'k1', 'python', '2026-01-01T00:00:00Z');
    fake(root, 'k2', 'python', '2026-01-02T00:00:00Z');
    fake(root, 'k3', 'python', '2026-01-03T00:00:00Z');
    fake(root, 'k4', 'python', '2026-01-04T00:00:00Z');
    fake(root, 'o1', 'other', '2026-01-01T00:00:00Z');
    const removed = await pruneTemplates(root, 'python', 'k4');
    assert.deepEqual(removed.sort(), ['k1', 'k2']);
    assert.deepEqual(readdirSync(root).sort(), ['k3', 'k4', 'o1']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('bench percentiles', () => {
  const d = dist(Array.from({ length: 100 }, (_, i) => 100 - i));
  assert.equal(d.p50, 50);
  assert.equal(d.p99, 99);
  assert.equal(d.min, 1);
  assert.equal(d.max, 100);
  assert.equal(d.mean, 50.5);
});
