// mcp-tools.test.ts — the MCP tool layer without KVM: the SDK's own client over
// an in-memory transport, against createMcpServer on an in-memory engine double.
// Covers the tool list, run_code output (text, images), the session tools, and
// every failure coming back as a tool error with a remediation (never a
// protocol error): bad arguments, gone sessions, hidden platform detail.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Engine } from '../../src/engine/types.js';
import { engineBackend } from '../../src/mcp/engine-backend.js';
import { createMcpServer } from '../../src/mcp/server.js';
import { checkArgs, toolDefs } from '../../src/mcp/tools.js';
import { setLogLevel } from '../../src/lib/log.js';
import { FakeEngine, PNG_1X1 } from './mcp-fake-engine.js';

setLogLevel('error');

type Result = { content: Array<{ type: string; text?: string; data?: string; mimeType?: string }>; isError?: boolean; structuredContent?: Record<string, unknown> };

async function connect(engine: Engine, local = false): Promise<{ client: Client; call: (name: string, args?: unknown) => Promise<Result> }> {
  const server = createMcpServer(engineBackend(engine, 'local'), { version: '0.0.0-test', maxTimeoutSeconds: 60, local });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(b);
  const call = async (name: string, args: unknown = {}): Promise<Result> =>
    (await client.callTool({ name, arguments: args as Record<string, unknown> })) as Result;
  return { client, call };
}

const text = (r: Result): string => r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');

test('tools/list names every tool with a described object schema', async () => {
  const { client } = await connect(new FakeEngine());
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['create_session', 'delete_session', 'exec_in_session', 'fork_session',
    'list_files', 'pause_session', 'read_file', 'run_code', 'write_file']);
  for (const t of tools) {
    assert.ok((t.description ?? '').length > 40, `${t.name} has a real description`);
    assert.equal(t.inputSchema.type, 'object');
    for (const [k, p] of Object.entries(t.inputSchema.properties ?? {})) {
      assert.ok(((p as { description?: string }).description ?? '').length > 5, `${t.name}.${k} is described`);
    }
  }
  const run = tools.find((t) => t.name === 'run_code')!;
  assert.deepEqual(run.inputSchema.required, ['code']);
  assert.equal((run.inputSchema.properties!.timeout_seconds as { maximum: number }).maximum, 60);
  assert.ok(tools.find((t) => t.name === 'delete_session')!.annotations?.destructiveHint);
  await client.close();
});

test('run_code returns stdout, stderr and the exit code as text; a failing program is not a tool error', async () => {
  const engine = new FakeEngine();
  const { client, call } = await connect(engine);
  const ok = await call('run_code', { code: 'echo 2' });
  assert.notEqual(ok.isError, true);
  assert.match(text(ok), /^stdout:\n2\n/);
  assert.match(text(ok), /exit_code: 0/);
  assert.equal(ok.structuredContent?.stdout, '2\n');
  assert.equal(engine.seen[0]!.timeoutSeconds, 30, 'default timeout applied');
  assert.equal(engine.seen[0]!.language, 'python');

  const bad = await call('run_code', { code: 'exit 3', timeout_seconds: 5 });
  assert.notEqual(bad.isError, true);
  assert.match(text(bad), /stderr:\nTraceback: failed\n/);
  assert.match(text(bad), /exit_code: 3/);
  await client.close();
});

test('rich outputs with image/png come back as MCP image content', async () => {
  const { client, call } = await connect(new FakeEngine());
  const r = await call('run_code', { code: 'png' });
  const img = r.content.find((c) => c.type === 'image');
  assert.ok(img, 'an image item');
  assert.equal(img.mimeType, 'image/png');
  assert.equal(img.data, PNG_1X1);
  await client.close();
});

test('bad arguments are tool errors that say what to fix', async () => {
  const { client, call } = await connect(new FakeEngine());
  const cases: Array<[string, unknown, RegExp]> = [
    ['run_code', {}, /missing required argument "code"/],
    ['run_code', { code: 'echo 1', timeout_seconds: 61 }, /"timeout_seconds" must be at most 60/],
    ['run_code', { code: 'echo 1', timeout_seconds: '5' }, /"timeout_seconds" must be a number/],
    ['run_code', { code: 'echo 1', language: 'cobol' }, /"language" must be one of: python/],
    ['run_code', { code: 'echo 1', colour: 'red' }, /unknown argument "colour"/],
    ['write_file', { session_id: 's', path: 'rel/x', content: '' }, /must be an absolute path/],
    ['write_file', { session_id: 's', path: '/tmp/x', content: '***', encoding: 'base64' }, /not valid base64/],
    ['fork_session', { session_id: 's', count: 1.5 }, /whole number/],
    ['create_session', { env: { A: 1 } }, /"env" must map names to strings/],
  ];
  for (const [name, args, re] of cases) {
    const r = await call(name, args);
    assert.equal(r.isError, true, `${name} ${JSON.stringify(args)} is a tool error`);
    assert.match(text(r), re);
    assert.match(text(r), /fix the arguments/);
  }
  const unknown = await call('no_such_tool', {});
  assert.equal(unknown.isError, true);
  assert.match(text(unknown), /the tools are: run_code/);
  await client.close();
});

test('create_session passes a named template to the engine, and none when it is omitted', async () => {
  const engine = new FakeEngine();
  const { client, call } = await connect(engine);
  const named = await call('create_session', { template: 'python-data' });
  assert.notEqual(named.isError, true, text(named));
  const plain = await call('create_session', {});
  assert.notEqual(plain.isError, true, text(plain));
  assert.equal(engine.created[0]?.template, 'python-data');
  assert.equal('template' in (engine.created[1] ?? {}), false);
  await client.close();
});

test('a session round trip: create, write, exec that reads it, read back what it wrote, fork, pause, delete', async () => {
  const { client, call } = await connect(new FakeEngine());
  const created = await call('create_session', { name: 'work' });
  assert.notEqual(created.isError, true, text(created));
  const id = created.structuredContent?.session_id as string;
  assert.match(id, /^sb_/);
  assert.equal(JSON.parse(text(created)).session_id, id);

  const w = await call('write_file', { session_id: id, path: '/tmp/in.txt', content: 'hello from the agent' });
  assert.match(text(w), /wrote 20 bytes to \/tmp\/in.txt/);
  const ex = await call('exec_in_session', { session_id: id, code: 'cat /tmp/in.txt' });
  assert.match(text(ex), /stdout:\nhello from the agent/);
  const ex2 = await call('exec_in_session', { session_id: id, code: 'save /tmp/out.txt done 42' });
  assert.match(text(ex2), /files created: \/tmp\/out.txt/);
  const back = await call('read_file', { session_id: id, path: '/tmp/out.txt' });
  assert.equal(text(back), 'done 42');
  const ls = await call('list_files', { session_id: id });
  assert.match(text(ls), /file\s+7\s+\/tmp\/out.txt/);

  await call('write_file', { session_id: id, path: '/tmp/p.png', content: PNG_1X1, encoding: 'base64' });
  const png = await call('read_file', { session_id: id, path: '/tmp/p.png' });
  assert.deepEqual(png.content.map((c) => [c.type, c.mimeType]), [['image', 'image/png']]);
  await call('write_file', { session_id: id, path: '/tmp/b.bin', content: Buffer.from([0, 255, 1]).toString('base64'), encoding: 'base64' });
  assert.match(text(await call('read_file', { session_id: id, path: '/tmp/b.bin' })), /base64 \(3 bytes, binary\):\nAP8B/);

  const forked = await call('fork_session', { session_id: id, count: 2 });
  const ids = forked.structuredContent?.session_ids as string[];
  assert.equal(ids.length, 2);
  assert.match(text(await call('read_file', { session_id: ids[0], path: '/tmp/in.txt' })), /hello from the agent/);
  assert.match(text(await call('pause_session', { session_id: id })), /state: paused/);

  const del = await call('delete_session', { session_id: id });
  assert.match(text(del), /deleted session/);
  const after = await call('exec_in_session', { session_id: id, code: 'echo 1' });
  assert.equal(after.isError, true);
  // The engine's own "create a new one" is completed with the tool to use, not repeated.
  assert.equal(text(after), `Gone: session ${id} was deleted; create a new one with create_session`);
  const missing = await call('read_file', { session_id: ids[1], path: '/tmp/nope' });
  assert.equal(missing.isError, true);
  assert.match(text(missing), /NotFound: .*check the path/);
  const late = await call('exec_in_session', { session_id: ids[1], code: 'timeout' });
  assert.notEqual(late.isError, true);
  assert.match(text(late), /exit_code: 124 \(stopped: ran past timeout_seconds=30.*\nthe session ended with it: create a new one with create_session/);
  assert.doesNotMatch(text(await call('run_code', { code: 'timeout' })), /session ended/);
  const taken = await call('create_session', { name: 'taken' });
  assert.match(text(taken), /^Conflict: .*pick another name/);
  await client.close();
});

test('platform errors: detail hidden over the network, shown locally; always a tool error', async () => {
  const remote = await connect(new FakeEngine());
  const r = await remote.call('run_code', { code: 'boom' });
  assert.equal(r.isError, true);
  assert.match(text(r), /^Internal: internal error;/);
  assert.doesNotMatch(text(r), /secret/);
  await remote.client.close();
  const local = await connect(new FakeEngine(), true);
  assert.match(text(await local.call('run_code', { code: 'boom' })), /vmm failed/);
  await local.client.close();
});

test('an engine without sessions answers the session tools with Unsupported, run_code still works', async () => {
  const plain = new FakeEngine() as Partial<FakeEngine>;
  const engine: Engine = { ready: plain.ready!.bind(plain), exec: plain.exec!.bind(plain), health: plain.health!.bind(plain), close: plain.close!.bind(plain) };
  const { client, call } = await connect(engine);
  const s = await call('create_session', {});
  assert.equal(s.isError, true);
  assert.match(text(s), /^Unsupported: .*no sessions/);
  assert.match(text(await call('run_code', { code: 'echo ok' })), /stdout:\nok/);
  await client.close();
});

test('a call the client cancels (notifications/cancelled) cancels the exec in the engine', { timeout: 120_000 }, async () => {
  const engine = new FakeEngine();
  const { client } = await connect(engine);
  const ac = new AbortController();
  const pending = client.callTool({ name: 'run_code', arguments: { code: 'sleep 60000' } }, undefined, { signal: ac.signal });
  while (engine.running === 0) await new Promise((r) => setTimeout(r, 5));
  ac.abort('the agent moved on');
  await assert.rejects(pending);
  while (engine.aborted === 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(engine.aborted, 1);
  await client.close();
});

test('checkArgs fills defaults and keeps given values', () => {
  const def = toolDefs().find((d) => d.name === 'list_files')!;
  assert.deepEqual(checkArgs(def, { session_id: 'x' }), { session_id: 'x', path: '/tmp' });
  assert.throws(() => checkArgs(def, []), /arguments must be an object/);
  assert.throws(() => checkArgs(def, { session_id: 'x', path: '/a\0b' }), /NUL/);
});
