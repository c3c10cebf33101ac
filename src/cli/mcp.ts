// mcp.ts — `forkbox mcp [--embedded]`: a Model Context Protocol server on
// stdin/stdout, offering the forkbox tools to an agent. By default it calls a
// running forkbox server (FORKBOX_BASE_URL, FORKBOX_API_KEY); with --embedded
// it runs its own engine in this process, so nothing else must run. Logs go to
// stderr (stdout carries the protocol); stdin closing or SIGTERM ends it.
import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createEngine, type ForkboxEngine } from '../engine/index.js';
import { log, setLogLevel } from '../lib/log.js';
import { guardBackend, type McpBackend } from '../mcp/backend.js';
import { engineBackend } from '../mcp/engine-backend.js';
import { httpBackend } from '../mcp/http-backend.js';
import { createMcpServer } from '../mcp/server.js';
import { VERSION } from '../server/app.js';

const USAGE = `usage: forkbox mcp [--embedded] [--base-url URL] [--max-timeout S]

Serves the forkbox tools over MCP on stdin/stdout (for an agent's "mcpServers" config).
  default      call a running forkbox server: FORKBOX_BASE_URL (http://127.0.0.1:8080), FORKBOX_API_KEY
  --embedded   run an engine in this process instead (needs /dev/kvm; builds the template on first use)
`;

export async function run(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args, allowPositionals: false,
      options: { embedded: { type: 'boolean' }, 'base-url': { type: 'string' }, 'max-timeout': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }).values;
  } catch (e) {
    process.stderr.write(`forkbox mcp: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const maxTimeoutSeconds = values['max-timeout'] !== undefined ? Number(values['max-timeout']) : 300;
  if (!Number.isFinite(maxTimeoutSeconds) || maxTimeoutSeconds <= 0) {
    process.stderr.write('forkbox mcp: --max-timeout takes seconds > 0\n');
    return 2;
  }
  if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');

  let engine: ForkboxEngine | undefined;
  let backend: McpBackend;
  if (values.embedded) {
    const e = await createEngine({
      poolSize: 2, warmForks: 1, buildIfMissing: true,
      onProgress: (l) => log.info('mcp.template', { progress: l }),
    });
    engine = e;
    const ready = e.ready();
    ready.catch(() => { /* reported to each call */ });
    // Calls wait for the template (built on first start) instead of failing while it loads.
    backend = guardBackend(engineBackend(e, 'local'), async (_kind, signal, fn) => { await ready; return fn(signal); });
  } else {
    const baseUrl = values['base-url'] ?? process.env.FORKBOX_BASE_URL ?? 'http://127.0.0.1:8080';
    const apiKey = process.env.FORKBOX_API_KEY;
    backend = httpBackend({ baseUrl, ...(apiKey ? { apiKey } : {}) });
  }

  const server = createMcpServer(backend, { version: VERSION, maxTimeoutSeconds, local: true });
  const transport = new StdioServerTransport();
  let finish!: () => void;
  const done = new Promise<void>((resolve) => { finish = resolve; });
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('mcp.stop', { reason: why });
    finish();
  };
  process.stdin.once('end', () => stop('stdin closed'));
  process.stdin.once('close', () => stop('stdin closed'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  server.onclose = () => stop('transport closed');
  await server.connect(transport);
  await done;
  await server.close().catch(() => undefined);
  if (engine) await engine.close(1000);
  return 0;
}
