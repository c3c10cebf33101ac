// context.ts — the state the routes share: the engine, the resolved config,
// the authenticator, the rate limiter, the admission queue and the metrics.
// the byte budgets. `closing` flips once on shutdown; new requests then get 503 ShuttingDown.
import type { Engine } from '../engine/types.js';
import type { Admission } from './admission.js';
import type { Authenticator } from './auth.js';
import type { ByteBudget } from './budget.js';
import type { ServerConfig } from './config.js';
import type { ServiceMetrics } from './metrics.js';
import type { RateLimiter } from './rate-limit.js';

export interface ServerContext {
  engine: Engine;
  config: ServerConfig;
  auth: Authenticator;
  limiter: RateLimiter;
  admission: Admission;
  metrics: ServiceMetrics;
  /** Finished results not yet sent, and bodies of unfinished exec requests (bytes, all requests). */
  resultBudget: ByteBudget;
  bodyBudget: ByteBudget;
  closing: boolean;
  startedAt: number;
  version: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** API key id of the caller (`anonymous` when auth is off). */
    keyId: string;
    /** The client's own X-Request-Id when it sent a well-formed one (logged beside request.id). */
    clientRequestId?: string;
  }
}
