// app.ts — builds the Fastify app: request ids (X-Request-Id, echoed back),
// auth, the routes, one error envelope `{ error: { code, message, requestId } }`
// for every platform error (validation 400, 401, 404, 413, 429, 503, 5xx), and
// one JSON-lines log record per request. The app does not own the engine: the
// caller (forkbox serve, or a test) creates it and closes it.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Engine } from '../engine/types.js';
import { ForkboxError, asForkboxError, internal, invalidRequest, notFound, payloadTooLarge, shuttingDown } from '../lib/errors.js';
import { log } from '../lib/log.js';
import { Admission } from './admission.js';
import { Authenticator, type KeyEntry } from './auth.js';
import type { ServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import { registerExecRoutes } from './exec.js';
import { registerHealthRoutes } from './health.js';
import { ServiceMetrics } from './metrics.js';
import { RateLimiter } from './rate-limit.js';
import { formatSchemaErrors, type SchemaError } from './schema.js';

export const VERSION = '0.1.0';

export interface AppOptions {
  engine: Engine;
  config: ServerConfig;
  /** API keys; empty or absent = auth off. */
  keys?: readonly KeyEntry[];
}

export interface ForkboxServer {
  app: FastifyInstance;
  ctx: ServerContext;
  /** Stops admitting work: new requests get 503 ShuttingDown, queued execs are rejected. */
  beginShutdown(): void;
}

const REQ_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function genReqId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && REQ_ID.test(given)) return given;
  return 'req_' + randomBytes(9).toString('base64url');
}

/** Maps anything thrown inside a request to a ForkboxError. */
function classify(err: FastifyError | Error, cfg: ServerConfig): ForkboxError {
  if (err instanceof ForkboxError) return err;
  const fe = err as FastifyError;
  if (fe.validation) return invalidRequest(fe.message);
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return payloadTooLarge(`request body is larger than ${cfg.bodyLimitBytes} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ForkboxError('InvalidRequest', 415, 'unsupported Content-Type: send application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return invalidRequest('request body is empty: send a JSON object');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return invalidRequest('request body is not valid JSON');
  }
  if (err instanceof SyntaxError) return invalidRequest('request body is not valid JSON');
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return status === 413 ? payloadTooLarge(fe.message) : new ForkboxError('InvalidRequest', status, fe.message);
  }
  return asForkboxError(err);
}

export function buildServer(opts: AppOptions): ForkboxServer {
  const cfg = opts.config;
  const admission = new Admission(cfg.maxConcurrency, cfg.maxQueue, cfg.queueTimeoutMs);
  const engine = opts.engine;
  const ctx: ServerContext = {
    engine,
    config: cfg,
    auth: new Authenticator(opts.keys ?? []),
    limiter: new RateLimiter(cfg.rateLimit, cfg.rateBurst),
    admission,
    metrics: new ServiceMetrics({
      poolReady: () => engine.health().pool.ready,
      poolTarget: () => engine.health().pool.target,
      liveForks: () => engine.health().liveForks,
      engineInFlight: () => engine.health().inFlight,
      running: () => admission.inFlight,
      queued: () => admission.queued,
      templateReady: () => (engine.health().ready ? 1 : 0),
    }),
    closing: false,
    startedAt: performance.now(),
    version: VERSION,
  };

  const app = Fastify({
    logger: false,
    bodyLimit: cfg.bodyLimitBytes,
    // Slow-upload guard: the whole request must arrive within 60 s (answers may take longer).
    requestTimeout: 60_000,
    genReqId,
    requestIdHeader: false,
    return503OnClosing: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => formatSchemaErrors(errors as unknown as SchemaError[], dataVar),
  });
  app.decorateRequest('keyId', 'anonymous');
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is 415

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (ctx.closing) throw shuttingDown();
    const route = request.routeOptions.url;
    const open = route === '/v1/health' || (route === '/v1/metrics' && !cfg.metricsAuth);
    if (!ctx.auth.enabled || open) return;
    const r = ctx.auth.check(request.headers.authorization);
    if (r instanceof ForkboxError) throw r;
    request.keyId = r.keyId;
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    ctx.metrics.requests.inc({ route, status: String(reply.statusCode) });
    log.info('http.request', {
      requestId: request.id,
      keyId: request.keyId,
      method: request.method,
      route,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 1000) / 1000,
    });
  });

  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    if (reply.raw.destroyed || request.raw.socket?.destroyed === true) {
      // The client went away (its exec was cancelled): nobody reads an answer; 499 marks it in logs.
      log.info('http.client_gone', { requestId: request.id, keyId: request.keyId, reason: err.message });
      reply.code(499);
      return '';
    }
    const fe = classify(err, cfg);
    if (fe.status === 503) {
      log.warn('http.unavailable', { requestId: request.id, keyId: request.keyId, code: fe.code, message: fe.message });
    } else if (fe.status >= 500) {
      log.error('http.error', { requestId: request.id, keyId: request.keyId, code: fe.code, err: fe.cause instanceof Error ? fe.cause : fe });
    }
    ctx.metrics.errors.inc({ code: fe.code });
    // Every 503 tells the client when to come back (the template may still be loading).
    const retryAfter = fe.retryAfter ?? (fe.status === 503 ? 5 : undefined);
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
    if (fe.code === 'Unauthorized') reply.header('www-authenticate', 'Bearer');
    // Internal errors keep their detail in the log, not in the response.
    const shown = fe.code === 'Internal' ? internal('internal error; see the server log for request ' + request.id) : fe;
    reply.code(fe.status).type('application/json; charset=utf-8');
    return shown.toJSON(request.id);
  });

  app.setNotFoundHandler(async (request) => {
    throw notFound(`no route ${request.method} ${request.url.split('?')[0]}`);
  });

  registerExecRoutes(app, ctx);
  registerHealthRoutes(app, ctx);

  return {
    app,
    ctx,
    beginShutdown: () => {
      ctx.closing = true;
      admission.close();
    },
  };
}
