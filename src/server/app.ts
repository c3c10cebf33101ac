// app.ts — builds the Fastify app: the server's own request id on every answer
// (a client's X-Request-Id is logged beside it), the Host guard while auth is
// off (DNS rebinding), auth, connection caps and timeouts, the routes, one error
// envelope `{"error": "<message>", "code": "<Code>", "request_id": "…"}` for
// every 4xx/5xx (Fastify's own 400/404/408/415 included; 5xx detail stays in
// the log), and one JSON-lines log record per request. The app does not own
// the engine: the caller (forkbox serve, or a test) creates it and closes it.
import { randomBytes } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Engine } from '../engine/types.js';
import { ForkboxError, asForkboxError, invalidRequest, notFound, payloadTooLarge, shuttingDown, type ErrorCode } from '../lib/errors.js';
import { log } from '../lib/log.js';
import { Admission } from './admission.js';
import { Authenticator, type KeyEntry } from './auth.js';
import { ByteBudget } from './budget.js';
import type { ServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import { registerExecRoutes } from './exec.js';
import { registerFileRoutes } from './files.js';
import { registerHealthRoutes } from './health.js';
import { registerMcpRoutes } from './mcp.js';
import { ServiceMetrics } from './metrics.js';
import { RateLimiter } from './rate-limit.js';
import { formatSchemaErrors, type SchemaError } from './schema.js';
import { registerSessionRoutes } from './sessions.js';

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

/** The server's own id; a client's X-Request-Id never replaces it (it is logged as clientRequestId). */
const newRequestId = (): string => 'req_' + randomBytes(9).toString('base64url');

/** The host part of a Host header value, lower-cased, without port or IPv6 brackets; undefined if malformed. */
export function hostOf(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  const v6 = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h);
  if (v6) return v6[1];
  const m = /^([a-z0-9._-]+)(?::\d{1,5})?$/.exec(h);
  return m ? m[1]!.replace(/\.$/, '') : undefined;
}

/** True when `host` names this machine's loopback: 127.0.0.0/8, ::1, localhost (and *.localhost). */
export function isLoopbackName(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost') || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** While auth is off, only Host values naming loopback, the bound host or an allowed host may drive the server. */
function hostAllowed(header: string | undefined, cfg: ServerConfig): boolean {
  if (header === undefined) return true; // HTTP/1.0 without Host: not a browser
  const h = hostOf(header);
  if (h === undefined) return false;
  if (isLoopbackName(h)) return true;
  const bound = hostOf(cfg.host.includes(':') && !cfg.host.startsWith('[') ? `[${cfg.host}]` : cfg.host);
  if (bound !== undefined && h === bound && bound !== '0.0.0.0' && bound !== '::') return true;
  return (cfg.allowedHosts ?? []).some((a) => hostOf(a) === h);
}

/** Fixed client-facing text for 5xx errors whose own message may carry host paths or native error text. */
const HIDDEN_5XX: Partial<Record<ErrorCode, string>> = {
  Internal: 'internal error',
  KvmUnavailable: 'the server cannot run sandboxes (KVM is unavailable)',
  TemplateBuildFailed: 'the language template could not be built or loaded',
  ImageBuildFailed: 'the language image could not be built',
  SandboxCrashed: 'the sandbox crashed',
};

/** Path-like text (two or more /segments) replaced in any message shown to a client. */
const scrubPaths = (m: string): string => m.replace(/(^|[\s'"(=:,])\/(?:[^\s'"(),:/]+\/)+[^\s'"(),:]*/g, '$1<path>');

/** What a client sees for an error: 5xx text from the engine or native code goes to the log only. */
function clientFacing(fe: ForkboxError, requestId: string): ForkboxError {
  const hidden = HIDDEN_5XX[fe.code];
  if (hidden !== undefined) {
    return new ForkboxError(fe.code, fe.status, `${hidden}; see the server log for request ${requestId}`,
      fe.retryAfter !== undefined ? { retryAfter: fe.retryAfter } : {});
  }
  const m = fe.status >= 500 ? scrubPaths(fe.message) : fe.message;
  return m === fe.message ? fe : new ForkboxError(fe.code, fe.status, m, fe.retryAfter !== undefined ? { retryAfter: fe.retryAfter } : {});
}

/** Malformed or timed-out HTTP (no request object exists): answer with the envelope, then close. */
function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const id = newRequestId();
  const message = status === 408 ? 'the request did not arrive in time (headers or body timeout)'
    : status === 431 ? 'request headers are too large' : 'malformed HTTP request';
  log.info('http.client_error', { requestId: id, status, reason: err.code ?? err.message });
  const body = JSON.stringify(new ForkboxError('InvalidRequest', status, message).toJSON(id));
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
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
  const admission = new Admission(cfg.maxConcurrency, cfg.maxQueue, cfg.queueTimeoutMs, cfg.maxRunningPerKey, cfg.maxQueuedPerKey);
  const resultBudget = new ByteBudget(cfg.resultBudgetBytes);
  const bodyBudget = new ByteBudget(cfg.bodyBudgetBytes);
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
      resultBytes: () => resultBudget.inUse,
      bodyBytes: () => bodyBudget.inUse,
      ...(engine.warmStats ? {
        warm: () => Object.keys(engine.health().templates).flatMap((template) => {
          const w = engine.warmStats!(template);
          return w ? [{ template, ready: w.ready, taken: w.taken, misses: w.misses, recycled: w.recycled, recycleFailed: w.recycleFailed }] : [];
        }),
      } : {}),
    }),
    resultBudget,
    bodyBudget,
    closing: false,
    startedAt: performance.now(),
    version: VERSION,
  };

  // Idle and slow sockets: headers within headersTimeoutMs, the whole request within requestTimeoutMs
  // (an answer may take up to the exec timeout), idle keep-alive sockets closed after keepAliveTimeoutMs.
  const requestTimeout = cfg.requestTimeoutMs;
  const headersTimeout = Math.min(cfg.headersTimeoutMs, requestTimeout);
  const keepAliveTimeout = cfg.keepAliveTimeoutMs;
  const app = Fastify({
    logger: false,
    bodyLimit: cfg.bodyLimitBytes,
    requestTimeout,
    keepAliveTimeout,
    serverFactory: (handler) => {
      const server = createServer({
        headersTimeout,
        requestTimeout,
        keepAliveTimeout,
        // How often Node checks those deadlines (its default, 30 s, would let them overrun by that much).
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 2))),
      }, handler as (req: IncomingMessage, res: ServerResponse) => void);
      server.maxConnections = cfg.maxConnections; // beyond it Node closes new sockets at once
      return server;
    },
    clientErrorHandler: clientError,
    frameworkErrors: (err, _request, reply) => {
      const id = newRequestId();
      const r = reply as unknown as { header(k: string, v: string): typeof r; code(n: number): typeof r; type(t: string): typeof r; send(b: unknown): void };
      r.header('x-request-id', id).code(400).type('application/json; charset=utf-8')
        .send(invalidRequest(`malformed request URL (${err.code})`).toJSON(id));
    },
    genReqId: newRequestId,
    requestIdHeader: false,
    return503OnClosing: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => formatSchemaErrors(errors as unknown as SchemaError[], dataVar),
  });
  app.decorateRequest('keyId', 'anonymous');
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is 415

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    const given = request.headers['x-request-id'];
    if (typeof given === 'string' && REQ_ID.test(given)) request.clientRequestId = given;
    if (!ctx.auth.enabled && !hostAllowed(request.headers.host, cfg)) {
      throw new ForkboxError('Forbidden', 403,
        `Host "${String(request.headers.host).slice(0, 100)}" is not accepted while authentication is off ` +
        '(DNS-rebinding guard): use a loopback address, the configured --host, or add it to FORKBOX_ALLOWED_HOSTS');
    }
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
      ...(request.clientRequestId !== undefined ? { clientRequestId: request.clientRequestId } : {}),
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
    const ids = { requestId: request.id, ...(request.clientRequestId !== undefined ? { clientRequestId: request.clientRequestId } : {}), keyId: request.keyId };
    if (fe.status === 503) {
      log.warn('http.unavailable', { ...ids, code: fe.code, message: fe.message });
    } else if (fe.status >= 500) {
      log.error('http.error', { ...ids, code: fe.code, message: fe.message, err: fe.cause instanceof Error ? fe.cause : fe });
    }
    ctx.metrics.errors.inc({ code: fe.code });
    // Every 503 tells the client when to come back (the template may still be loading).
    const retryAfter = fe.retryAfter ?? (fe.status === 503 ? 5 : undefined);
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
    if (fe.code === 'Unauthorized') reply.header('www-authenticate', 'Bearer');
    // 5xx detail (host paths, native error text) stays in the log, not in the response.
    const shown = clientFacing(fe, request.id);
    reply.code(fe.status).type('application/json; charset=utf-8');
    return shown.toJSON(request.id);
  });

  app.setNotFoundHandler(async (request) => {
    throw notFound(`no route ${request.method} ${request.url.split('?')[0]}`);
  });

  registerExecRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
  registerFileRoutes(app, ctx);
  registerHealthRoutes(app, ctx);
  registerMcpRoutes(app, ctx);

  return {
    app,
    ctx,
    beginShutdown: () => {
      ctx.closing = true;
      admission.close();
    },
  };
}
