// mcp-http.test.ts — /mcp (Streamable HTTP) on a real listening server over an
// in-memory engine double, driven by the MCP SDK's own client: API keys, owner
// isolation of sessions, rate limits and per-key admission answered as tool
// errors, 405 for GET; and the stdio CLI's HTTP backend against /v1/exec.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ForkboxError } from '../../src/lib/errors.js';
import { setLogLevel } from '../../src/lib/log.js';
import { httpBackend } from '../../src/mcp/http-backend.js';
import { buildServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig, type ServerConfig } from '../../src/server/config.js';
import { FakeEngine } from './mcp-fake-engine.js';

setLogLevel('error');

const KEY_A = 'sk_test_a_0123456789abcdef';
const KEY_B = 'sk_test_b_0123456789abcdef';
type Result = { content: Array<{ type: string; text?: string }>; isError?: boolean; structuredContent?: Record<string, unknown> };
const text = (r: Result): string => r.content.map((c) => c.text ?? '').join('\n');

async function serve(over: Partial<ServerConfig> = {}) {
  const engine = new FakeEngine();
  const config = { ...loadServerConfig([], {}), ...over };
  const server = buildServer({ engine, config, keys: parseKeyFile(`a:${KEY_A}\nb:${KEY_B}`) });
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = server.app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return { engine, server, url, close: () => server.app.close() };
}

async function mcpClient(url: string, key?: string) {
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', url),
    key ? { requestInit: { headers: { authorization: `Bearer ${key}` } } } : {});
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(transport);
  const call = async (name: string, args: Record<string, unknown> = {}): Promise<Result> =>
    (await client.callTool({ name, arguments: args })) as Result;
  return { client, call };
}

test('/mcp: initialize, tools/list, run_code and a session round trip under an API key', async () => {
  const s = await serve();
  try {
    const { client, call } = await mcpClient(s.url, KEY_A);
    assert.equal(client.getServerVersion()?.name, 'forkbox');
    assert.equal((await client.listTools()).tools.length, 9);
    const r = await call('run_code', { code: 'echo 2' });
    assert.equal(r.structuredContent?.stdout, '2\n');
    const id = (await call('create_session')).structuredContent?.session_id as string;
    await call('write_file', { session_id: id, path: '/tmp/a.txt', content: 'abc' });
    assert.match(text(await call('exec_in_session', { session_id: id, code: 'cat /tmp/a.txt' })), /stdout:\nabc/);
    // Another key does not see the session.
    const b = await mcpClient(s.url, KEY_B);
    const other = await b.call('exec_in_session', { session_id: id, code: 'cat /tmp/a.txt' });
    assert.equal(other.isError, true);
    assert.match(text(other), /^NotFound: /);
    assert.match(text(await call('delete_session', { session_id: id })), /deleted/);
    await client.close();
    await b.client.close();
  } finally {
    await s.close();
  }
});

test('/mcp: no key is 401 before any MCP message; GET is 405', async () => {
  const s = await serve();
  try {
    await assert.rejects(mcpClient(s.url), /401|Unauthorized|missing/i);
    const get = await fetch(`${s.url}/mcp`, { headers: { authorization: `Bearer ${KEY_A}`, accept: 'text/event-stream' } });
    assert.equal(get.status, 405);
    assert.equal((await get.json()).code, 'InvalidRequest');
  } finally {
    await s.close();
  }
});

test('/mcp: tool calls take rate-limit tokens; past the burst they are RateLimited tool errors', async () => {
  const s = await serve({ rateLimit: 0.01, rateBurst: 2 });
  try {
    const { client, call } = await mcpClient(s.url, KEY_A);
    assert.notEqual((await call('run_code', { code: 'echo 1' })).isError, true);
    assert.notEqual((await call('run_code', { code: 'echo 1' })).isError, true);
    const third = await call('run_code', { code: 'echo 1' });
    assert.equal(third.isError, true);
    assert.match(text(third), /^RateLimited: .*retry after \d+ s/);
    assert.equal(s.engine.seen.length, 2, 'the refused call never reached the engine');
    // Another key has its own bucket.
    const b = await mcpClient(s.url, KEY_B);
    assert.notEqual((await b.call('run_code', { code: 'echo 1' })).isError, true);
    await client.close();
    await b.client.close();
  } finally {
    await s.close();
  }
});

test('/mcp: run_code goes through per-key admission like /v1/exec', async () => {
  const s = await serve({ maxRunningPerKey: 1, maxQueuedPerKey: 0 });
  try {
    const { client, call } = await mcpClient(s.url, KEY_A);
    const slow = call('run_code', { code: 'sleep 400' });
    // Wait until the first exec is running, then a second one for the same key is refused.
    while (s.engine.running === 0) await new Promise((r) => setTimeout(r, 5));
    const second = await call('run_code', { code: 'echo 2' });
    assert.equal(second.isError, true);
    assert.match(text(second), /^RateLimited: .*executions running/);
    // A REST exec by the same key counts against the same cap.
    const rest = await fetch(`${s.url}/v1/exec`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' },
      body: JSON.stringify({ code: 'echo 3' }) });
    assert.equal(rest.status, 429);
    assert.match(text(await slow), /slept/);
    assert.equal(s.engine.maxRunning, 1);
    await client.close();
  } finally {
    await s.close();
  }
});

test('/mcp: a client that disconnects mid-call cancels its exec', { timeout: 120_000 }, async () => {
  const s = await serve();
  try {
    const ac = new AbortController();
    const call = fetch(`${s.url}/mcp`, {
      method: 'POST', signal: ac.signal,
      headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'run_code', arguments: { code: 'sleep 60000' } } }),
    });
    while (s.engine.running === 0) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    await assert.rejects(call);
    while (s.engine.aborted === 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.engine.aborted, 1);
    assert.equal(s.server.ctx.admission.inFlight, 0, 'its slot is free again');
  } finally {
    await s.close();
  }
});

test('HTTP backend (forkbox mcp without --embedded): /v1/exec results and error envelopes', async () => {
  const s = await serve();
  try {
    const b = httpBackend({ baseUrl: s.url + '/', apiKey: KEY_A });
    const ac = new AbortController();
    const r = await b.runCode({ code: 'exit 4', language: 'python', timeoutSeconds: 5 }, ac.signal);
    assert.equal(r.exitCode, 4);
    assert.equal(r.stderr, 'Traceback: failed\n');
    assert.equal(r.outcome, 'exited');
    const noKey = httpBackend({ baseUrl: s.url });
    await assert.rejects(noKey.runCode({ code: 'echo 1', language: 'python', timeoutSeconds: 5 }, ac.signal),
      (e: unknown) => e instanceof ForkboxError && e.code === 'Unauthorized' && e.status === 401);
    await assert.rejects(b.runCode({ code: 'echo 1', language: 'python', timeoutSeconds: 5, template: 'Not a name' }, ac.signal),
      (e: unknown) => e instanceof ForkboxError && e.status === 400);
  } finally {
    await s.close();
  }
  const dead = httpBackend({ baseUrl: s.url });
  await assert.rejects(dead.runCode({ code: 'echo 1', language: 'python', timeoutSeconds: 5 }, new AbortController().signal),
    (e: unknown) => e instanceof ForkboxError && e.code === 'Overloaded' && /check FORKBOX_BASE_URL/.test(e.message));
});
