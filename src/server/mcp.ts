// mcp.ts — MCP's Streamable HTTP transport at /mcp, stateless: each POST gets
// its own MCP server and transport, answered as JSON. It sits behind the same
// auth hook, Host guard and body budget as the REST routes; each tool call
// takes a rate-limit token, and run_code / exec_in_session are executions
// through the same per-key admission and result budget as POST /v1/exec.
// Sessions belong to the caller's key id ("local" with auth off). GET and
// DELETE are 405: there is no standalone event stream and no MCP session.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ForkboxError, rateLimited, shuttingDown } from '../lib/errors.js';
import { log } from '../lib/log.js';
import { guardBackend, type CallKind } from '../mcp/backend.js';
import { engineBackend } from '../mcp/engine-backend.js';
import { createMcpServer } from '../mcp/server.js';
import { Hold, jsonSize } from './budget.js';
import type { ServerContext } from './context.js';

const MiB = 1024 * 1024;
const budgetFull = (what: string, limit: number): ForkboxError =>
  new ForkboxError('Overloaded', 503, `server is holding too many ${what} (budget ${Math.round((limit / MiB) * 10) / 10} MiB); retry after 2 s`,
    { retryAfter: 2 });

/** The fairness and rate-limit key, as for /v1/exec: the API key id, or the client address with auth off. */
const keyOf = (request: FastifyRequest): string => (request.keyId === 'anonymous' ? `ip:${request.ip}` : request.keyId);
/** Session owner: the key id; with auth off one shared owner, as the REST session routes use. */
const ownerOf = (request: FastifyRequest): string => (request.keyId === 'anonymous' ? 'local' : request.keyId);

function onDone(reply: FastifyReply, free: () => void): void {
  reply.raw.once('finish', free);
  reply.raw.once('close', free);
}

function outputSize(v: unknown): number {
  const r = v as { stdout?: unknown; stderr?: unknown };
  return typeof r?.stdout === 'string' && typeof r.stderr === 'string' ? jsonSize(r.stdout) + jsonSize(r.stderr) : 0;
}

export function registerMcpRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // The body is held against the body budget before it is read, as for /v1/exec.
  const preParsing = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const cl = Number(request.headers['content-length']);
    const n = Number.isFinite(cl) && cl >= 0 ? Math.min(cl, ctx.config.bodyLimitBytes) : ctx.config.bodyLimitBytes;
    const hold = new Hold(ctx.bodyBudget);
    if (!hold.take(n)) throw budgetFull('request body bytes', ctx.bodyBudget.limit);
    onDone(reply, () => hold.free());
  };

  app.post('/mcp', { preParsing }, async (request, reply) => {
    const key = keyOf(request);
    const results = new Hold(ctx.resultBudget);
    onDone(reply, () => results.free());
    const gone = new AbortController();
    reply.raw.once('close', () => { if (!reply.raw.writableEnded) gone.abort(new Error('client disconnected')); });

    const guard = async <T>(kind: CallKind, signal: AbortSignal | undefined, fn: (s?: AbortSignal) => Promise<T>): Promise<T> => {
      if (ctx.closing) throw shuttingDown();
      const t = ctx.limiter.take(key, 1);
      if (!t.ok) throw rateLimited(t.retryAfterSeconds);
      const s = signal ? AbortSignal.any([signal, gone.signal]) : gone.signal;
      if (kind === 'call') return fn(s);
      const ticket = ctx.admission.reserve(key, 1);
      try {
        const release = await ticket.acquire(s);
        let out: T;
        try {
          if (ctx.resultBudget.inUse >= ctx.resultBudget.limit) throw budgetFull('result bytes', ctx.resultBudget.limit);
          out = await fn(s);
        } finally {
          release();
        }
        if (!results.take(outputSize(out))) throw budgetFull('result bytes', ctx.resultBudget.limit);
        return out;
      } finally {
        ticket.cancel();
      }
    };
    const caps = {
      ...(ctx.config.stdoutCapBytes !== undefined ? { stdoutCap: ctx.config.stdoutCapBytes } : {}),
      ...(ctx.config.stderrCapBytes !== undefined ? { stderrCap: ctx.config.stderrCapBytes } : {}),
    };
    const backend = guardBackend(engineBackend(ctx.engine, ownerOf(request), caps), guard);
    const server = createMcpServer(backend, { version: ctx.version, maxTimeoutSeconds: ctx.config.maxTimeoutSeconds });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await server.connect(transport);
    reply.raw.once('close', () => {
      transport.close().catch(() => undefined);
      server.close().catch(() => undefined);
    });
    reply.hijack();
    reply.raw.setHeader('x-request-id', request.id);
    try {
      await transport.handleRequest(request.raw, reply.raw, request.body);
    } catch (e) {
      log.error('mcp.http_error', { requestId: request.id, keyId: request.keyId, err: e as Error });
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        reply.raw.end(JSON.stringify(new ForkboxError('Internal', 500, 'internal error in the MCP transport').toJSON(request.id)));
      } else if (!reply.raw.writableEnded) {
        reply.raw.end();
      }
    }
  });

  const noStream = async (_request: FastifyRequest, reply: FastifyReply): Promise<never> => {
    reply.header('allow', 'POST');
    throw new ForkboxError('InvalidRequest', 405, 'this MCP endpoint is stateless: send JSON-RPC messages with POST /mcp (no event stream, no MCP sessions)');
  };
  app.get('/mcp', noStream);
  app.delete('/mcp', noStream);
}
