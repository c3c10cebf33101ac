// server-docs.test.ts — keeps the service docs true to the code: every server
// option (flag and variable) is in docs/api.md's configuration table, every
// catalog error code is in docs/errors.md and in docs/openapi.yaml's enum, and
// every route the app registers is in the OpenAPI document.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Engine } from '../../src/engine/types.js';
import { repoRoot } from '../../src/lib/paths.js';
import { buildServer } from '../../src/server/app.js';
import { OPTIONS, loadServerConfig, usage } from '../../src/server/config.js';

const doc = (f: string): string => readFileSync(join(repoRoot, 'docs', f), 'utf8');

function catalogCodes(): string[] {
  const src = readFileSync(join(repoRoot, 'src/lib/errors.ts'), 'utf8');
  return [...(/export type ErrorCode =([\s\S]*?);/.exec(src)![1]!).matchAll(/'([A-Za-z]+)'/g)].map((m) => m[1]!);
}

test('docs/api.md documents every option as flag and variable', () => {
  const api = doc('api.md');
  const help = usage();
  for (const o of OPTIONS) {
    assert.match(api, new RegExp(`\\| \`${o.env}\` \\| \`--${o.flag}\` \\|`), `${o.env} / --${o.flag} missing from docs/api.md`);
    assert.ok(help.includes(`--${o.flag} (${o.env})`));
  }
});

test('every catalog error code is documented', () => {
  const errors = doc('errors.md');
  const openapi = doc('openapi.yaml');
  const enumLine = /enum: \[InvalidRequest[^\]]*\]/.exec(openapi)?.[0] ?? '';
  for (const code of catalogCodes()) {
    assert.match(errors, new RegExp(`\\| \`${code}\` \\|`), `${code} missing from docs/errors.md`);
    assert.ok(enumLine.includes(code), `${code} missing from the error enum of docs/openapi.yaml`);
  }
});

test('every route of the app is in docs/openapi.yaml', async () => {
  const engine = { health: () => ({}) } as unknown as Engine;
  const { app } = buildServer({ engine, config: loadServerConfig([], {}) });
  await app.ready();
  const openapi = doc('openapi.yaml');
  const routes = [['POST', '/v1/exec'], ['POST', '/v1/exec/batch'], ['GET', '/v1/health'], ['GET', '/v1/metrics']] as const;
  for (const [method, path] of routes) {
    assert.ok(app.hasRoute({ method, url: path }), `app lacks ${method} ${path}`);
    assert.match(openapi, new RegExp(`^  ${path.replace(/\//g, '\\/')}:$`, 'm'), `${path} missing from openapi`);
  }
  await app.close();
});
