// mcp.test.ts — the MCP server end to end with the MCP SDK's own client, on
// the real engine: stdio (`forkbox mcp --embedded` as a child process) and
// Streamable HTTP (/mcp on an in-process server, ephemeral port): initialize,
// tools/list, run_code of print(1 + 1), a session round trip (skipped with one
// line until the engine has sessions), a bad argument as a tool error; and the
// README's mcpServers config, started as an MCP client would start it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { createEngine, ForkboxEngine } from '../../src/engine/index.js';
import { repoRoot } from '../../src/lib/paths.js';
import { buildServer, type ForkboxServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig } from '../../src/server/config.js';

const KEY = 'sk_e2e_mcp_0123456789abcdef';
const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const SLOW = { timeout: 15 * 60_000 }; // the first call may wait for the template to load
type Result = { content: Array<{ type: string; text?: string }>; isError?: boolean; structuredContent?: Record<string, unknown> };
const text = (r: Result): string => r.content.map((c) => c.text ?? '').join('\n');

interface McpServersConfig { mcpServers: Record<string, { command: string; args?: string[]; env?: Record<string, string> }> }

/** The README's MCP client config (the ```json block between the forkbox:mcp markers). */
function readmeConfig(): McpServersConfig {
  const doc = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const a = doc.indexOf('<!-- forkbox:mcp:start -->');
  const b = doc.indexOf('<!-- forkbox:mcp:end -->');
  assert.ok(a >= 0 && b > a, 'README.md has a forkbox:mcp section');
  const m = /```json\n([\s\S]*?)^```/m.exec(doc.slice(a, b));
  assert.ok(m, 'the MCP section has a ```json block');
  return JSON.parse(m[1]!) as McpServersConfig;
}

/** Starts a config entry as an MCP client does; `forkbox` is this checkout's CLI (what `npm link` installs). */
function stdioFrom(entry: McpServersConfig['mcpServers'][string], env: Record<string, string> = {}): StdioClientTransport {
  assert.equal(entry.command, 'forkbox', 'the README config starts the forkbox command');
  return new StdioClientTransport({
    command: process.execPath, args: [CLI, ...(entry.args ?? [])], cwd: repoRoot,
    env: { ...(process.env as Record<string, string>), ...(entry.env ?? {}), ...env }, stderr: 'inherit',
  });
}

async function connect(transport: Transport) {
  const client = new Client({ name: 'forkbox-e2e', version: '1' });
  await client.connect(transport);
  const call = async (name: string, args: Record<string, unknown> = {}): Promise<Result> =>
    (await client.callTool({ name, arguments: args }, undefined, SLOW)) as Result;
  return { client, call };
}

const sessionsLanded = typeof (ForkboxEngine.prototype as unknown as { createSession?: unknown }).createSession === 'function';

/** The checks every transport must pass. */
async function drive(transport: Transport, sessions = sessionsLanded): Promise<void> {
  const { client, call } = await connect(transport);
  try {
    assert.equal(client.getServerVersion()?.name, 'forkbox');
    const names = (await client.listTools()).tools.map((t) => t.name);
    for (const n of ['run_code', 'create_session', 'exec_in_session', 'write_file', 'read_file', 'list_files', 'fork_session', 'pause_session', 'delete_session']) {
      assert.ok(names.includes(n), `tools/list has ${n}`);
    }
    const r = await call('run_code', { code: 'print(1 + 1)', language: 'python', timeout_seconds: 30 });
    assert.notEqual(r.isError, true, text(r));
    assert.equal(r.structuredContent?.stdout, '2\n');
    assert.match(text(r), /^stdout:\n2\n/);
    assert.match(text(r), /exit_code: 0/);

    const failing = await call('run_code', { code: 'import sys; print("bad", file=sys.stderr); sys.exit(3)' });
    assert.notEqual(failing.isError, true, 'a failing program is a result');
    assert.match(text(failing), /stderr:\nbad\n[\s\S]*exit_code: 3/);

    const bad = await call('run_code', { code: 'print(1)', timeout_seconds: -1 });
    assert.equal(bad.isError, true);
    assert.match(text(bad), /"timeout_seconds" must be greater than 0.*fix the arguments/);

    if (sessions) {
      const created = await call('create_session', { language: 'python' });
      assert.notEqual(created.isError, true, text(created));
      const id = created.structuredContent?.session_id as string;
      const w = await call('write_file', { session_id: id, path: '/tmp/input.txt', content: 'forty-two\n' });
      assert.notEqual(w.isError, true, text(w));
      const ex = await call('exec_in_session', { session_id: id,
        code: "s = open('/tmp/input.txt').read().strip()\nopen('/tmp/output.txt', 'w').write(s.upper())\nprint(len(s))" });
      assert.notEqual(ex.isError, true, text(ex));
      assert.match(text(ex), /^stdout:\n9\n/);
      const back = await call('read_file', { session_id: id, path: '/tmp/output.txt' });
      assert.equal(text(back), 'FORTY-TWO');
      assert.notEqual((await call('delete_session', { session_id: id })).isError, true);
      const after = await call('exec_in_session', { session_id: id, code: 'print(1)' });
      assert.equal(after.isError, true);
      assert.match(text(after), /create a new one with create_session|no such session/);
    }
  } finally {
    await client.close();
  }
}

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: MCP e2e tests: /dev/kvm is absent\n');
} else {
  if (!sessionsLanded) process.stdout.write('skipped: MCP session round trips: the engine has no createSession yet\n');
  describe('MCP on the real engine', { timeout: 40 * 60_000 }, () => {
    let server: ForkboxServer;
    let url = '';

    before(async () => {
      const engine = await createEngine({ poolSize: 2, warmForks: 1, onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
      server = buildServer({ engine, config: loadServerConfig([], {}), keys: parseKeyFile(`e2e:${KEY}`) });
      await server.app.listen({ host: '127.0.0.1', port: 0 });
      const addr = server.app.server.address();
      url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    }, { timeout: 30 * 60_000 });

    after(async () => {
      await server?.app.close();
      await server?.ctx.engine.close(1000);
    });

    test('Streamable HTTP at /mcp', async () => {
      await drive(new StreamableHTTPClientTransport(new URL('/mcp', url), { requestInit: { headers: { authorization: `Bearer ${KEY}` } } }));
    });

    test('stdio: forkbox mcp --embedded (the README config)', async () => {
      const cfg = readmeConfig();
      assert.deepEqual(cfg.mcpServers.forkbox?.args, ['mcp', '--embedded']);
      await drive(stdioFrom(cfg.mcpServers.forkbox!));
    });

    test('stdio: forkbox mcp against a running server (the README config, pointed at this one)', async () => {
      const entry = readmeConfig().mcpServers['forkbox-remote'];
      assert.ok(entry?.env?.FORKBOX_BASE_URL !== undefined && entry.env.FORKBOX_API_KEY !== undefined, 'remote config names its URL and key');
      // Its session tools need the REST session routes as well as the engine's sessions.
      const routes = server.app.hasRoute({ method: 'POST', url: '/v1/sessions' });
      if (sessionsLanded && !routes) process.stdout.write('skipped: MCP session round trip over REST: no /v1/sessions route yet\n');
      await drive(stdioFrom(entry, { FORKBOX_BASE_URL: url, FORKBOX_API_KEY: KEY }), sessionsLanded && routes);
    });
  });
}
