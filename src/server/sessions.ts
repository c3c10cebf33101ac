// sessions.ts — /v1/sessions: create, list, read, delete, exec, fork, pause.
// A session belongs to the API key that created it ("local" with auth off) and
// is invisible to any other (404). Every engine call that runs a VM goes through
// the same rate limit, per-key admission and byte budgets as /v1/exec; a
// session exec *is* an exec (runOne), with the session's language and its
// result repr and side-effect report added. One exec at a time per session is
// the engine's rule (409 Conflict); an expired or dead session is 410 Gone.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LANGUAGES, type Language } from '../engine/types.js';
import type { SessionEngine, SessionExecResult, SessionInfo, SideEffects } from '../engine/session-types.js';
import { ForkboxError, invalidRequest, unsupported } from '../lib/errors.js';
import { jsonSize } from './budget.js';
import type { ServerContext } from './context.js';
import { budgetFull, disconnectSignal, holdBody, keyOf, newBytes, runOne, takeTokens, toResponse, type ExecResponse } from './exec.js';
import { languageModule, templateOf } from '../languages/index.js';
import { forkSchema, idParam, sessionCreateSchema, sessionExecSchema, type ExecBody, type SessionCreateBody, type SessionExecBody } from './schema.js';

export interface SessionJson {
  id: string;
  name: string | null;
  language: string;
  /** The template by name (the language's own when the session was created without one). */
  template: string;
  state: SessionInfo['state'];
  created_at: string;
  last_active_at: string;
  expires_at: string;
  timeout_seconds: number;
  idle_timeout_seconds: number;
  metadata: Record<string, string>;
  execs: number;
  parent_id: string | null;
  memory_bytes: number;
  disk_bytes: number;
}

const templateOfLanguage = (lang: string): string => { const m = languageModule(lang); return m ? templateOf(m) : lang; };

export function toSessionJson(s: SessionInfo): SessionJson {
  return {
    id: s.id,
    name: s.name ?? null,
    language: s.language,
    template: s.template ?? templateOfLanguage(s.language),
    state: s.state,
    created_at: s.createdAt,
    last_active_at: s.lastActiveAt,
    expires_at: s.expiresAt,
    timeout_seconds: s.timeoutSeconds,
    idle_timeout_seconds: s.idleTimeoutSeconds,
    metadata: s.metadata,
    execs: s.execs,
    parent_id: s.parentId ?? null,
    memory_bytes: s.memoryBytes,
    disk_bytes: s.diskBytes,
  };
}

export interface SideEffectsJson {
  files_created: Array<{ path: string; size: number }>;
  files_modified: Array<{ path: string; size: number }>;
  files_deleted: Array<{ path: string }>;
  files_truncated: boolean;
  pages_dirtied: number;
  peak_memory_bytes: number;
}

export function toSideEffectsJson(e: SideEffects): SideEffectsJson {
  return {
    files_created: e.filesCreated,
    files_modified: e.filesModified,
    files_deleted: e.filesDeleted,
    files_truncated: e.filesTruncated,
    pages_dirtied: e.pagesDirtied,
    peak_memory_bytes: e.peakMemoryBytes,
  };
}

export interface SessionExecResponse extends ExecResponse {
  result: string | null;
  result_truncated: boolean;
  side_effects: SideEffectsJson;
}

/** The engine's session half, or 501 when this engine keeps no sessions. */
export function sessionsOf(ctx: ServerContext): SessionEngine {
  const e = ctx.engine as unknown as Partial<SessionEngine>;
  if (typeof e.createSession !== 'function') throw unsupported('this server\'s engine does not keep sessions');
  return e as SessionEngine;
}

/** The owner of a request's sessions: its API key id, or one shared "local" owner with auth off. */
export const ownerOf = (request: FastifyRequest): string => (request.keyId === 'anonymous' ? 'local' : request.keyId);

/** Runs one VM-using engine call under the key's admission (a slot, fair among keys) after taking `tokens`. */
export async function admitted<T>(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, tokens: number,
  fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  takeTokens(ctx, request, tokens);
  const ticket = ctx.admission.reserve(keyOf(request), 1);
  try {
    const ac = disconnectSignal(request, reply);
    const release = await ticket.acquire(ac.signal);
    try {
      return await fn(ac.signal);
    } finally {
      release();
    }
  } finally {
    ticket.cancel();
  }
}

function checkCap(ctx: ServerContext, se: SessionEngine, owner: string, adding: number): void {
  const max = ctx.config.maxSessionsPerKey;
  if (max <= 0) return;
  const held = se.listSessions(owner).filter((s) => s.state !== 'closed').length;
  if (held + adding > max) {
    throw new ForkboxError('RateLimited', 429, `this key holds ${held} sessions and may hold ${max} ` +
      '(FORKBOX_MAX_SESSIONS_PER_KEY): delete one first', { retryAfter: 1 });
  }
}

type IdParams = { id: string };

export function registerSessionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const preParsing = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => holdBody(ctx, request, reply);
  const params = idParam;

  app.post('/v1/sessions', { schema: { body: sessionCreateSchema(ctx.config) }, preParsing }, async (request, reply) => {
    const se = sessionsOf(ctx);
    const b = (request.body ?? {}) as SessionCreateBody;
    const language = b.language ?? 'python';
    if (!(LANGUAGES as readonly string[]).includes(language)) {
      throw unsupported(`language "${language}" is not supported by this server yet (supported: ${LANGUAGES.join(', ')})`);
    }
    const owner = ownerOf(request);
    checkCap(ctx, se, owner, 1);
    const info = await admitted(ctx, request, reply, 1, (signal) => se.createSession({
      owner,
      language: language as Language,
      ...(b.template !== undefined ? { template: b.template } : {}),
      ...(b.name !== undefined ? { name: b.name } : {}),
      timeoutSeconds: b.timeout_seconds ?? Math.min(ctx.config.sessionTimeoutSeconds, ctx.config.maxSessionTimeoutSeconds),
      idleTimeoutSeconds: b.idle_timeout_seconds ?? Math.min(ctx.config.sessionIdleTimeoutSeconds, ctx.config.maxSessionIdleTimeoutSeconds),
      ...(b.env !== undefined ? { env: b.env } : {}),
      metadata: b.metadata ?? {},
    }, signal));
    reply.code(201);
    return toSessionJson(info);
  });

  app.get('/v1/sessions', async (request) => {
    const se = sessionsOf(ctx);
    return { sessions: se.listSessions(ownerOf(request)).map(toSessionJson) };
  });

  app.get('/v1/sessions/:id', { schema: { params } }, async (request) => {
    const { id } = request.params as IdParams;
    return toSessionJson(sessionsOf(ctx).getSession(ownerOf(request), id));
  });

  app.delete('/v1/sessions/:id', { schema: { params } }, async (request, reply) => {
    const { id } = request.params as IdParams;
    await sessionsOf(ctx).deleteSession(ownerOf(request), id);
    reply.code(204);
    return '';
  });

  app.post('/v1/sessions/:id/exec', { schema: { params, body: sessionExecSchema(ctx.config) }, preParsing }, async (request, reply) => {
    const se = sessionsOf(ctx);
    const owner = ownerOf(request);
    const { id } = request.params as IdParams;
    const b = request.body as SessionExecBody;
    const session = se.getSession(owner, id); // 404 before anything else
    if (b.command !== undefined) {
      throw unsupported(`shell commands need processes; run code in the session's language (${session.language}) with "code"`);
    }
    if (b.code === undefined) throw invalidRequest('body is missing required field "code"');
    if (b.language !== undefined && b.language !== session.language) {
      throw invalidRequest(`body.language is "${b.language}" but session ${id} runs ${session.language}`);
    }
    const own = session.template ?? templateOfLanguage(session.language);
    if (b.template !== undefined && b.template !== own) {
      throw invalidRequest(`body.template is "${b.template}" but session ${id} runs ${own}`);
    }
    const { template: _t, ...rest } = b;
    const body: ExecBody = { ...rest, code: b.code, language: session.language };
    takeTokens(ctx, request, 1);
    const ticket = ctx.admission.reserve(keyOf(request), 1);
    const bytes = newBytes(ctx, reply, false);
    const ac = disconnectSignal(request, reply);
    let r: SessionExecResult;
    try {
      r = await runOne<SessionExecResult>(ctx, request, body, ac.signal, ticket, bytes, undefined,
        (req, signal) => se.execSession(owner, id, b.discard === true ? { ...req, discard: true } : req, signal));
    } finally {
      ticket.cancel();
    }
    const side = toSideEffectsJson(r.sideEffects);
    const extra = (r.result !== undefined ? jsonSize(r.result) : 0) + Buffer.byteLength(JSON.stringify(side));
    if (!bytes.results.take(extra)) throw budgetFull('result bytes', ctx.resultBudget.limit);
    const out: SessionExecResponse = { ...toResponse(r), result: r.result ?? null, result_truncated: r.resultTruncated ?? false, side_effects: side };
    return out;
  });

  app.post('/v1/sessions/:id/fork', { schema: { params, body: forkSchema(ctx.config) }, preParsing }, async (request, reply) => {
    const se = sessionsOf(ctx);
    const owner = ownerOf(request);
    const { id } = request.params as IdParams;
    const count = ((request.body ?? {}) as { count?: number }).count ?? 1;
    se.getSession(owner, id);
    checkCap(ctx, se, owner, count);
    const children = await admitted(ctx, request, reply, count, () => se.forkSession(owner, id, count));
    reply.code(201);
    return { sessions: children.map(toSessionJson) };
  });

  app.post('/v1/sessions/:id/pause', { schema: { params }, preParsing }, async (request, reply) => {
    const se = sessionsOf(ctx);
    const owner = ownerOf(request);
    const { id } = request.params as IdParams;
    se.getSession(owner, id);
    return toSessionJson(await admitted(ctx, request, reply, 1, () => se.pauseSession(owner, id)));
  });
}
