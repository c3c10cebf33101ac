// files.ts — a session's files over HTTP: PUT/GET/DELETE /v1/sessions/{id}/files
// (raw bytes in and out, a JSON listing for a directory) and PUT/GET
// /v1/sessions/{id}/archive (a tar into or out of a directory; `delete=true`
// removes what the archive lacks: the destructive sync). Paths must be absolute
// and normalized; the engine refuses escapes and enforces the session's quota.
// Archive members are checked by the tar reader (absolute, `..`, hard links,
// devices and fifos are 400). Upload bodies are held against the body budget,
// downloads against the result budget, both bounded by --transfer-limit.
import { posix } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FileInfo, SessionEngine } from '../engine/session-types.js';
import { ForkboxError, invalidRequest, payloadTooLarge } from '../lib/errors.js';
import { TarError, readTar, writeTar, type TarEntry } from '../lib/tar.js';
import { Hold } from './budget.js';
import type { ServerContext } from './context.js';
import { budgetFull, onDone } from './exec.js';
import { fileQuery, idParam, type FileQuery } from './schema.js';
import { admitted, ownerOf, sessionsOf } from './sessions.js';

/** Deepest directory walked for a listing-based archive or delete. */
const MAX_DEPTH = 64;
const MAX_ENTRIES = 100000;

/** An absolute, normalized path without NUL (trailing slash only for "/"), or 400. */
export function checkPath(p: string, what = 'query.path'): string {
  if (p.includes('\0')) throw invalidRequest(`${what} contains NUL`);
  if (!p.startsWith('/')) throw invalidRequest(`${what} must be absolute (start with "/")`);
  if (p !== '/' && (posix.normalize(p) !== p || p.endsWith('/'))) {
    throw invalidRequest(`${what} must be normalized (no "." or ".." segments, no repeated or trailing "/"): "${p.slice(0, 200)}"`);
  }
  return p;
}

const join = (dir: string, rel: string): string => (dir === '/' ? '/' + rel : `${dir}/${rel}`);

function parseMode(m: string | undefined): number | undefined {
  return m === undefined ? undefined : parseInt(m, 8);
}

/** Holds an upload body against the body budget before it is read; 413 past the transfer limit. */
function holdUpload(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): void {
  const limit = ctx.config.transferLimitBytes;
  const cl = Number(request.headers['content-length']);
  if (Number.isFinite(cl) && cl > limit) throw payloadTooLarge(`upload is larger than ${limit} bytes (FORKBOX_TRANSFER_LIMIT_BYTES)`);
  const n = Number.isFinite(cl) && cl >= 0 ? cl : limit;
  const hold = new Hold(ctx.bodyBudget);
  if (!hold.take(n)) throw budgetFull('request body bytes', ctx.bodyBudget.limit);
  onDone(reply, () => hold.free());
}

/** Holds `n` bytes of a download against the result budget until the answer is sent. */
function holdDownload(ctx: ServerContext, reply: FastifyReply, n: number): void {
  const hold = new Hold(ctx.resultBudget);
  if (!hold.take(n)) throw budgetFull('result bytes', ctx.resultBudget.limit);
  onDone(reply, () => hold.free());
}

const isNotFound = (e: unknown): boolean => e instanceof ForkboxError && e.code === 'NotFound';

async function statOrUndefined(se: SessionEngine, owner: string, id: string, path: string): Promise<FileInfo | undefined> {
  try {
    return await se.statFile(owner, id, path);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Makes `path` a directory, creating missing parents and replacing a non-directory in the way. */
async function ensureDir(se: SessionEngine, owner: string, id: string, path: string): Promise<void> {
  const st = await statOrUndefined(se, owner, id, path);
  if (st?.type === 'dir') return;
  if (st) await se.removeFile(owner, id, path, { recursive: true });
  else if (path !== '/') await ensureDir(se, owner, id, posix.dirname(path));
  await se.mkdir(owner, id, path);
}

/** Every entry under `dir` (relative path → info), walked breadth-first with depth and count bounds. */
async function walk(se: SessionEngine, owner: string, id: string, dir: string): Promise<Array<{ rel: string; info: FileInfo }>> {
  const out: Array<{ rel: string; info: FileInfo }> = [];
  let level: string[] = [''];
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > MAX_DEPTH) throw invalidRequest(`${dir} is nested deeper than ${MAX_DEPTH} directories`);
    const next: string[] = [];
    for (const rel of level) {
      for (const info of await se.listFiles(owner, id, rel === '' ? dir : join(dir, rel))) {
        const r = rel === '' ? info.name : `${rel}/${info.name}`;
        out.push({ rel: r, info });
        if (out.length > MAX_ENTRIES) throw payloadTooLarge(`${dir} holds more than ${MAX_ENTRIES} entries`);
        if (info.type === 'dir') next.push(r);
      }
    }
    level = next;
  }
  return out;
}

export interface ArchiveResult {
  path: string;
  files: number;
  dirs: number;
  bytes: number;
  deleted: string[];
  /** Members not written: symlinks (the engine has no call to create one yet). */
  skipped: string[];
}

async function extract(se: SessionEngine, owner: string, id: string, dir: string, entries: TarEntry[], del: boolean): Promise<ArchiveResult> {
  const res: ArchiveResult = { path: dir, files: 0, dirs: 0, bytes: 0, deleted: [], skipped: [] };
  await ensureDir(se, owner, id, dir);
  if (del) {
    // Everything the archive names, and every directory above it, stays; the rest goes, first (frees quota).
    const keep = new Map<string, boolean>(); // relative path → must be a directory
    for (const e of entries) {
      const parts = e.name.split('/');
      for (let i = 1; i < parts.length; i++) keep.set(parts.slice(0, i).join('/'), true);
      keep.set(e.name, e.type === 'dir');
    }
    for (const { rel, info } of await walk(se, owner, id, dir)) {
      if (res.deleted.some((d) => rel.startsWith(d + '/'))) continue; // under a removed directory
      const wantDir = keep.get(rel);
      const kept = wantDir !== undefined && wantDir === (info.type === 'dir');
      if (kept) continue;
      await se.removeFile(owner, id, join(dir, rel), { recursive: true });
      res.deleted.push(rel);
    }
    res.deleted = res.deleted.map((r) => join(dir, r));
  }
  const made = new Set<string>([dir]);
  const dirOf = async (path: string): Promise<void> => {
    if (made.has(path)) return;
    await ensureDir(se, owner, id, path);
    made.add(path);
  };
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.type === 'dir') {
      await dirOf(path);
      res.dirs++;
    } else if (e.type === 'file') {
      await dirOf(posix.dirname(path));
      const st = await statOrUndefined(se, owner, id, path);
      if (st && st.type === 'dir') await se.removeFile(owner, id, path, { recursive: true });
      await se.writeFile(owner, id, path, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength), { mode: e.mode || 0o644, parents: true });
      res.files++;
      res.bytes += e.data.length;
    } else {
      res.skipped.push(path);
    }
  }
  return res;
}

async function pack(se: SessionEngine, owner: string, id: string, dir: string, limit: number): Promise<Uint8Array> {
  const entries: TarEntry[] = [];
  let total = 0;
  for (const { rel, info } of await walk(se, owner, id, dir)) {
    const mtime = Math.floor(Date.parse(info.mtime) / 1000) || 0;
    if (info.type === 'dir') {
      entries.push({ name: rel, type: 'dir', mode: info.mode, mtime, data: new Uint8Array(0) });
    } else if (info.type === 'file') {
      total += info.size + 1024;
      if (total > limit) throw payloadTooLarge(`${dir} holds more than ${limit} bytes (FORKBOX_TRANSFER_LIMIT_BYTES): download a subdirectory`);
      const data = await se.readFile(owner, id, join(dir, rel));
      entries.push({ name: rel, type: 'file', mode: info.mode, mtime, data });
    }
    // Symlinks, devices and others are left out: the engine has no readlink call, and devices never travel.
  }
  return writeTar(entries);
}

export function registerFileRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Raw bodies, whatever their Content-Type, in this scope only (the JSON routes stay JSON-only).
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.config.transferLimitBytes }, (_req, body, done) => done(null, body));
    const schema = { params: idParam, querystring: fileQuery };
    const preParsing = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => holdUpload(ctx, request, reply);
    const ids = (request: FastifyRequest): { se: SessionEngine; owner: string; id: string; q: FileQuery } => {
      const q = request.query as FileQuery;
      checkPath(q.path);
      return { se: sessionsOf(ctx), owner: ownerOf(request), id: (request.params as { id: string }).id, q };
    };
    const body = (request: FastifyRequest): Buffer => (Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0));

    scope.put('/v1/sessions/:id/files', { schema, preParsing, bodyLimit: ctx.config.transferLimitBytes }, async (request, reply) => {
      const { se, owner, id, q } = ids(request);
      if (q.path === '/') throw invalidRequest('query.path names the root directory, not a file');
      const data = body(request);
      const mode = parseMode(q.mode);
      const opts = { ...(mode !== undefined ? { mode } : {}), ...(q.parents === 'true' ? { parents: true } : {}) };
      return admitted(ctx, request, reply, 1, () => se.writeFile(owner, id, q.path, data, opts));
    });

    scope.get('/v1/sessions/:id/files', { schema }, async (request, reply) => {
      const { se, owner, id, q } = ids(request);
      return admitted(ctx, request, reply, 1, async () => {
        const st = await se.statFile(owner, id, q.path);
        if (st.type === 'dir') return { entries: await se.listFiles(owner, id, q.path) };
        if (st.size > ctx.config.transferLimitBytes) {
          throw payloadTooLarge(`${q.path} is ${st.size} bytes, more than ${ctx.config.transferLimitBytes} (FORKBOX_TRANSFER_LIMIT_BYTES)`);
        }
        holdDownload(ctx, reply, st.size);
        const data = await se.readFile(owner, id, q.path);
        reply.type('application/octet-stream');
        return data;
      });
    });

    scope.delete('/v1/sessions/:id/files', { schema }, async (request, reply) => {
      const { se, owner, id, q } = ids(request);
      if (q.path === '/') throw invalidRequest('query.path names the root directory, which cannot be removed');
      await admitted(ctx, request, reply, 1, () => se.removeFile(owner, id, q.path, q.recursive === 'true' ? { recursive: true } : {}));
      reply.code(204);
      return '';
    });

    scope.put('/v1/sessions/:id/archive', { schema, preParsing, bodyLimit: ctx.config.transferLimitBytes }, async (request, reply) => {
      const { se, owner, id, q } = ids(request);
      let entries: TarEntry[];
      try {
        entries = readTar(body(request));
      } catch (e) {
        if (e instanceof TarError) throw invalidRequest(`the archive is refused: ${e.message}`);
        throw e;
      }
      se.getSession(owner, id);
      return admitted(ctx, request, reply, 1, () => extract(se, owner, id, q.path, entries, q.delete === 'true'));
    });

    scope.get('/v1/sessions/:id/archive', { schema }, async (request, reply) => {
      const { se, owner, id, q } = ids(request);
      return admitted(ctx, request, reply, 1, async () => {
        const st = await se.statFile(owner, id, q.path);
        if (st.type !== 'dir') throw invalidRequest(`${q.path} is not a directory`);
        const tar = await pack(se, owner, id, q.path, ctx.config.transferLimitBytes);
        holdDownload(ctx, reply, tar.length);
        reply.type('application/x-tar');
        return Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength);
      });
    });
  });
}
