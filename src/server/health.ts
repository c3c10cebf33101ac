// health.ts — GET /v1/health (unauthenticated: it reveals readiness and pool
// counts; template errors and keys only to an authenticated caller) and GET /v1/metrics (Prometheus text; behind
// auth unless FORKBOX_METRICS_AUTH=0). Health is 200 when the default template
// is ready and the server is not shutting down, else 503 with the same body,
// so load balancers can use it as a readiness probe.
import type { FastifyInstance } from 'fastify';
import { ForkboxError } from '../lib/errors.js';
import type { ServerContext } from './context.js';

export function registerHealthRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/health', async (request, reply) => {
    const h = ctx.engine.health();
    // Anonymous callers (when keys are configured) see readiness, not error text or template keys.
    const trusted = !ctx.auth.enabled || !(ctx.auth.check(request.headers.authorization) instanceof ForkboxError);
    // Even trusted callers get template errors without host paths (the log has them in full).
    const scrubbed = Object.fromEntries(Object.entries(h.templates).map(([name, t]) => [
      name, t.error !== undefined ? { ...t, error: t.error.replace(/(^|[\s'"(=:,])\/(?:[^\s'"(),:/]+\/)+[^\s'"(),:]*/g, '$1<path>') } : t,
    ]));
    const templates = trusted ? scrubbed : Object.fromEntries(Object.entries(h.templates).map(([name, t]) => [
      name, { ready: t.ready, ...(t.base !== undefined ? { base: t.base } : {}), ...(t.building !== undefined ? { building: t.building } : {}), ...(t.error !== undefined ? { error: 'failed (details for authenticated callers and in the server log)' } : {}) },
    ]));
    const status = ctx.closing ? 'shutting_down' : h.ready ? 'ok' : 'starting';
    reply.code(status === 'ok' ? 200 : 503);
    return {
      status,
      version: ctx.version,
      uptime_seconds: Math.round((performance.now() - ctx.startedAt) / 1000),
      auth: ctx.auth.enabled,
      templates,
      pool: h.pool,
      live_forks: h.liveForks,
      in_flight: h.inFlight,
      admission: {
        running: ctx.admission.inFlight,
        queued: ctx.admission.queued,
        max_concurrency: ctx.admission.maxConcurrency,
        max_queue: ctx.admission.maxQueue,
      },
    };
  });

  app.get('/v1/metrics', async (_request, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return ctx.metrics.render();
  });
}
