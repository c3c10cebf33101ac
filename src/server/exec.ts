// exec.ts — POST /v1/exec and POST /v1/exec/batch. Each execution takes a
// rate-limit token and a concurrency slot, runs in a fresh fork, and is
// cancelled (AbortSignal → the engine kicks the fork) when the client goes
// away. A guest failing is a 200 with its exit code; only platform failures
// are error envelopes. A batch runs in parallel forks, bounded per batch, and
// returns results in request order; a platform error fails the whole batch.
// Bytes are budgeted: a request's body is held against the body budget from
// before it is read until the answer is sent, each finished result against the
// result budget (503 when either is full), and a batch's output against its
// own cap (413). Guest-written text reaches the log only with FORKBOX_LOG_OUTPUT.
// Each result also carries Zeroboot's `output` (= stdout) and `duration_ms`, and
// `results`: rich outputs in E2B's code-interpreter Result shape (snake_case).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LANGUAGES, type ExecRequest, type ExecResult, type Language } from '../engine/types.js';
import { ForkboxError, payloadTooLarge, rateLimited, shuttingDown, unsupported } from '../lib/errors.js';
import { log } from '../lib/log.js';
import type { Ticket } from './admission.js';
import { Hold, jsonSize } from './budget.js';
import { crashForLog } from '../engine/decode.js';
import { resultToJson } from '../languages/rich.js';
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
  /** Zeroboot's name for the program's output: stdout alone (stderr stays in its own field). */
  output: string;
  /** Zeroboot's name for the wall-clock time of the exec: the same value as total_time_ms. */
  duration_ms: number;
  /** Rich outputs (display(), figures, a session's last expression): E2B Results, e.g.
   *  `{ "text": "<Figure …>", "png": "<base64>", "is_main_result": false }`. Empty when none. */
  results: Array<Record<string, unknown>>;
  /** True when rich outputs were dropped (more than 16, or over the byte limit). */
  results_truncated: boolean;
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
    output: r.stdout,
    duration_ms: ms(r.totalTimeMs),
    results: r.results ? r.results.map(resultToJson) : [],
    results_truncated: r.resultsTruncated === true,
  };
}

/** 501 for a language this server knows of but does not run. */
function checkLanguage(b: ExecBody, where = 'language'): void {
  if (!(LANGUAGES as readonly string[]).includes(b.language)) {
    throw unsupported(`${where} "${b.language}" is not supported by this server yet (supported: ${LANGUAGES.join(', ')})`);
  }
}

export function toEngineRequest(ctx: ServerContext, b: ExecBody): ExecRequest {
  const req: ExecRequest = { code: b.code, language: b.language as Language, timeoutSeconds: b.timeout_seconds };
  if (b.template !== undefined) req.template = b.template;
  if (b.env !== undefined) req.env = b.env;
  if (b.stdin !== undefined) req.stdin = b.stdin;
  if (ctx.config.stdoutCapBytes !== undefined) req.stdoutCap = ctx.config.stdoutCapBytes;
  if (ctx.config.stderrCapBytes !== undefined) req.stderrCap = ctx.config.stderrCapBytes;
  return req;
}

/** An AbortSignal that fires when the client disconnects before the reply is sent. */
export function disconnectSignal(request: FastifyRequest, reply: FastifyReply): AbortController {
  const ac = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableEnded) ac.abort(new Error('client disconnected'));
  };
  reply.raw.once('close', onClose);
  request.raw.once('aborted', onClose);
  return ac;
}

/** The fairness and rate-limit key: the API key id, or the client address when auth is off. */
export const keyOf = (request: FastifyRequest): string => (request.keyId === 'anonymous' ? `ip:${request.ip}` : request.keyId);

export function takeTokens(ctx: ServerContext, request: FastifyRequest, n: number): void {
  const t = ctx.limiter.take(keyOf(request), n);
  if (!t.ok) throw rateLimited(t.retryAfterSeconds);
}

const MiB = 1024 * 1024;
const mib = (n: number): string => `${Math.round((n / MiB) * 10) / 10} MiB`;
export const budgetFull = (what: string, limit: number): ForkboxError =>
  new ForkboxError('Overloaded', 503, `server is holding too many ${what} (budget ${mib(limit)}); retry after 2 s`, { retryAfter: 2 });

/** Per-request byte accounting: result bytes held (freed when the answer is sent) and, for a batch, its total. */
export interface Bytes { results: Hold; batch?: { total: number } }

/** Frees a request's holds once its answer is written or its socket closes. */
export function onDone(reply: FastifyReply, free: () => void): void {
  reply.raw.once('finish', free);
  reply.raw.once('close', free);
}

/** JSON bytes of a result's text; stdout counts twice because `output` repeats it. */
function resultSize(r: ExecResult): number {
  return 2 * jsonSize(r.stdout) + jsonSize(r.stderr) + (r.crash !== undefined ? jsonSize(r.crash) : 0) +
    (r.results?.length ? Buffer.byteLength(JSON.stringify(r.results)) : 0);
}

/** One admitted, budgeted, logged exec; `run` is the engine call (a one-shot exec unless a session route passes its own). */
export async function runOne<R extends ExecResult = ExecResult>(ctx: ServerContext, request: FastifyRequest, body: ExecBody, signal: AbortSignal,
  ticket: Ticket, bytes: Bytes, index?: number,
  run: (req: ExecRequest, signal: AbortSignal) => Promise<R> = (req, s) => ctx.engine.exec(req, s) as Promise<R>): Promise<R> {
  const release = await ticket.acquire(signal);
  let result: R;
  try {
    // Refuse before running when finished results already fill the budget.
    if (ctx.resultBudget.inUse >= ctx.resultBudget.limit) throw budgetFull('result bytes', ctx.resultBudget.limit);
    result = await run(toEngineRequest(ctx, body), signal);
  } finally {
    release();
  }
  const size = resultSize(result);
  const m = ctx.metrics;
  m.forkTime.observe(result.forkTimeMs / 1000);
  m.execTime.observe(result.execTimeMs / 1000);
  m.totalTime.observe(result.totalTimeMs / 1000);
  m.executions.inc({ language: body.language, outcome: result.outcome });
  if (result.outcome === 'timeout') m.timeouts.inc();
  if (result.outcome === 'crashed') m.crashes.inc();
  log.info('exec.finished', {
    requestId: request.id,
    ...(request.clientRequestId !== undefined ? { clientRequestId: request.clientRequestId } : {}),
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
    resultJsonBytes: size,
    ...(result.results?.length ? { richResults: result.results.length } : {}),
    ...(result.resultsTruncated ? { richResultsTruncated: true } : {}),
    ...(result.crash !== undefined ? { crash: crashForLog(result.crash, ctx.config.logOutput) } : {}),
    ...(ctx.config.logCode ? { code: body.code } : {}),
  });
  // Cancelled because the server is going down (not because the client left): say so.
  if (result.outcome === 'cancelled' && ctx.closing && !signal.aborted) throw shuttingDown();
  if (bytes.batch) {
    bytes.batch.total += size;
    if (bytes.batch.total > ctx.config.maxBatchOutputBytes) {
      throw payloadTooLarge(`the batch's output is larger than ${ctx.config.maxBatchOutputBytes} bytes of JSON ` +
        `(FORKBOX_MAX_BATCH_OUTPUT_BYTES): split the batch or print less`);
    }
  }
  if (!bytes.results.take(size)) throw budgetFull('result bytes', ctx.resultBudget.limit);
  return result;
}

/** Holds the request body against the body budget before it is read (Content-Length, else the body limit). */
export function holdBody(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): void {
  const cl = Number(request.headers['content-length']);
  const n = Number.isFinite(cl) && cl >= 0 ? Math.min(cl, ctx.config.bodyLimitBytes) : ctx.config.bodyLimitBytes;
  const hold = new Hold(ctx.bodyBudget);
  if (!hold.take(n)) throw budgetFull('request body bytes', ctx.bodyBudget.limit);
  onDone(reply, () => hold.free());
}

export function newBytes(ctx: ServerContext, reply: FastifyReply, batch: boolean): Bytes {
  const results = new Hold(ctx.resultBudget);
  onDone(reply, () => results.free());
  return batch ? { results, batch: { total: 0 } } : { results };
}

export function registerExecRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const preParsing = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => holdBody(ctx, request, reply);

  app.post('/v1/exec', { schema: { body: execSchema(ctx.config) }, preParsing }, async (request, reply) => {
    const body = request.body as ExecBody;
    checkLanguage(body);
    takeTokens(ctx, request, 1);
    const ticket = ctx.admission.reserve(keyOf(request), 1);
    const ac = disconnectSignal(request, reply);
    try {
      const result = await runOne(ctx, request, body, ac.signal, ticket, newBytes(ctx, reply, false));
      return toResponse(result);
    } finally {
      ticket.cancel();
    }
  });

  app.post('/v1/exec/batch', { schema: { body: batchSchema(ctx.config) }, preParsing }, async (request, reply) => {
    const { executions } = request.body as BatchBody;
    executions.forEach((e, i) => checkLanguage(e, `executions[${i}].language`));
    takeTokens(ctx, request, executions.length);
    const ticket = ctx.admission.reserve(keyOf(request), executions.length);
    const bytes = newBytes(ctx, reply, true);
    const ac = disconnectSignal(request, reply);
    const results = new Array<ExecResult>(executions.length);
    let next = 0;
    let firstError: unknown;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= executions.length || firstError !== undefined) return;
        try {
          results[i] = await runOne(ctx, request, executions[i]!, ac.signal, ticket, bytes, i);
        } catch (e) {
          if (firstError === undefined) firstError = e;
          ac.abort(e); // cancel the rest of the batch
          return;
        }
      }
    };
    const n = Math.min(ctx.config.batchParallelism, executions.length);
    try {
      await Promise.all(Array.from({ length: n }, worker));
    } finally {
      ticket.cancel();
    }
    if (firstError !== undefined) {
      results.length = 0; // the error answer does not need the finished items' output
      bytes.results.free();
      throw firstError;
    }
    return { results: results.map(toResponse) };
  });
}
