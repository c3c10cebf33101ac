// exec.ts — POST /v1/exec and POST /v1/exec/batch. Each execution takes a
// rate-limit token and a concurrency slot, runs in a fresh fork, and is
// cancelled (AbortSignal → the engine kicks the fork) when the client goes
// away. A guest failing is a 200 with its exit code; only platform failures
// are error envelopes. A batch runs in parallel forks, bounded per batch, and
// returns results in request order; a platform error fails the whole batch.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LANGUAGES, type ExecRequest, type ExecResult, type Language } from '../engine/types.js';
import { rateLimited, shuttingDown, unsupported } from '../lib/errors.js';
import { log } from '../lib/log.js';
import type { ServerContext } from './context.js';
import { batchSchema, execSchema, type BatchBody, type ExecBody } from './schema.js';

export interface ExecResponse {
  id: string;
  stdout: string;
  stderr: string;
  exit_code: number;
  outcome: ExecResult['outcome'];
  fork_time_ms: number;
  exec_time_ms: number;
  total_time_ms: number;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  crash?: string;
}

const ms = (n: number): number => Math.round(n * 1000) / 1000;

export function toResponse(r: ExecResult): ExecResponse {
  return {
    id: r.id,
    stdout: r.stdout,
    stderr: r.stderr,
    exit_code: r.exitCode,
    outcome: r.outcome,
    fork_time_ms: ms(r.forkTimeMs),
    exec_time_ms: ms(r.execTimeMs),
    total_time_ms: ms(r.totalTimeMs),
    stdout_truncated: r.stdoutTruncated,
    stderr_truncated: r.stderrTruncated,
    ...(r.crash !== undefined ? { crash: r.crash } : {}),
  };
}

/** 501 for a language this server knows of but does not run. */
function checkLanguage(b: ExecBody, where = 'language'): void {
  if (!(LANGUAGES as readonly string[]).includes(b.language)) {
    throw unsupported(`${where} "${b.language}" is not supported by this server yet (supported: ${LANGUAGES.join(', ')})`);
  }
}

function toEngineRequest(ctx: ServerContext, b: ExecBody): ExecRequest {
  const req: ExecRequest = { code: b.code, language: b.language as Language, timeoutSeconds: b.timeout_seconds };
  if (b.env !== undefined) req.env = b.env;
  if (b.stdin !== undefined) req.stdin = b.stdin;
  if (ctx.config.stdoutCapBytes !== undefined) req.stdoutCap = ctx.config.stdoutCapBytes;
  if (ctx.config.stderrCapBytes !== undefined) req.stderrCap = ctx.config.stderrCapBytes;
  return req;
}

/** An AbortSignal that fires when the client disconnects before the reply is sent. */
function disconnectSignal(request: FastifyRequest, reply: FastifyReply): AbortController {
  const ac = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableEnded) ac.abort(new Error('client disconnected'));
  };
  reply.raw.once('close', onClose);
  request.raw.once('aborted', onClose);
  return ac;
}

function takeTokens(ctx: ServerContext, request: FastifyRequest, n: number): void {
  const t = ctx.limiter.take(request.keyId === 'anonymous' ? `ip:${request.ip}` : request.keyId, n);
  if (!t.ok) throw rateLimited(t.retryAfterSeconds);
}

async function runOne(ctx: ServerContext, request: FastifyRequest, body: ExecBody, signal: AbortSignal, index?: number): Promise<ExecResult> {
  const release = await ctx.admission.acquire(signal);
  let result: ExecResult;
  try {
    result = await ctx.engine.exec(toEngineRequest(ctx, body), signal);
  } finally {
    release();
  }
  const m = ctx.metrics;
  m.forkTime.observe(result.forkTimeMs / 1000);
  m.execTime.observe(result.execTimeMs / 1000);
  m.totalTime.observe(result.totalTimeMs / 1000);
  m.executions.inc({ language: body.language, outcome: result.outcome });
  if (result.outcome === 'timeout') m.timeouts.inc();
  if (result.outcome === 'crashed') m.crashes.inc();
  log.info('exec.finished', {
    requestId: request.id,
    keyId: request.keyId,
    ...(index !== undefined ? { batchIndex: index } : {}),
    execId: result.id,
    language: body.language,
    outcome: result.outcome,
    exitCode: result.exitCode,
    forkMs: ms(result.forkTimeMs),
    execMs: ms(result.execTimeMs),
    totalMs: ms(result.totalTimeMs),
    stdoutBytes: Buffer.byteLength(result.stdout),
    stderrBytes: Buffer.byteLength(result.stderr),
    ...(result.crash !== undefined ? { crash: result.crash } : {}),
    ...(ctx.config.logCode ? { code: body.code } : {}),
  });
  // Cancelled because the server is going down (not because the client left): say so.
  if (result.outcome === 'cancelled' && ctx.closing && !signal.aborted) throw shuttingDown();
  return result;
}

export function registerExecRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/exec', { schema: { body: execSchema(ctx.config) } }, async (request, reply) => {
    const body = request.body as ExecBody;
    checkLanguage(body);
    takeTokens(ctx, request, 1);
    const ac = disconnectSignal(request, reply);
    const result = await runOne(ctx, request, body, ac.signal);
    return toResponse(result);
  });

  app.post('/v1/exec/batch', { schema: { body: batchSchema(ctx.config) } }, async (request, reply) => {
    const { executions } = request.body as BatchBody;
    executions.forEach((e, i) => checkLanguage(e, `executions[${i}].language`));
    takeTokens(ctx, request, executions.length);
    const ac = disconnectSignal(request, reply);
    const results = new Array<ExecResult>(executions.length);
    let next = 0;
    let firstError: unknown;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= executions.length || firstError !== undefined) return;
        try {
          results[i] = await runOne(ctx, request, executions[i]!, ac.signal, i);
        } catch (e) {
          if (firstError === undefined) firstError = e;
          ac.abort(e); // cancel the rest of the batch
          return;
        }
      }
    };
    const n = Math.min(ctx.config.batchParallelism, executions.length);
    await Promise.all(Array.from({ length: n }, worker));
    if (firstError !== undefined) throw firstError;
    return { results: results.map(toResponse) };
  });
}
