// http-backend.ts — the MCP backend over a running forkbox server's REST API
// (POST /v1/exec, /v1/sessions and its exec, files, fork and pause routes),
// with fetch. An error envelope becomes the ForkboxError of the same code; an
// unreachable server becomes a 503 that names the base URL to check.
import type { ExecOutcome, Language } from '../engine/types.js';
import type { FileInfo, FileType, SessionInfo, SideEffects } from '../engine/session-types.js';
import { ForkboxError, type ErrorCode } from '../lib/errors.js';
import { resultFromJson } from '../languages/rich.js';
import type { McpBackend, RichResult, RunOutput } from './backend.js';

export interface HttpBackendOptions {
  baseUrl: string;
  apiKey?: string;
}

type Json = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

function toSession(j: Json): SessionInfo {
  const s: SessionInfo = {
    id: str(j.id),
    language: str(j.language) as Language,
    state: str(j.state) as SessionInfo['state'],
    createdAt: str(j.created_at),
    lastActiveAt: str(j.last_active_at),
    expiresAt: str(j.expires_at),
    timeoutSeconds: num(j.timeout_seconds),
    idleTimeoutSeconds: num(j.idle_timeout_seconds),
    metadata: (j.metadata as Record<string, string> | undefined) ?? {},
    execs: num(j.execs),
    memoryBytes: num(j.memory_bytes),
    diskBytes: num(j.disk_bytes),
  };
  if (typeof j.name === 'string') s.name = j.name;
  if (typeof j.parent_id === 'string') s.parentId = j.parent_id;
  return s;
}

function toSideEffects(j: Json): SideEffects {
  const list = (v: unknown): Array<{ path: string; size: number }> =>
    Array.isArray(v) ? v.map((e: Json) => ({ path: str(e.path), size: num(e.size) })) : [];
  return {
    filesCreated: list(j.files_created),
    filesModified: list(j.files_modified),
    filesDeleted: list(j.files_deleted).map(({ path }) => ({ path })),
    filesTruncated: j.files_truncated === true,
    pagesDirtied: num(j.pages_dirtied),
    peakMemoryBytes: num(j.peak_memory_bytes),
  };
}

function toRun(j: Json): RunOutput {
  const out: RunOutput = {
    stdout: str(j.stdout),
    stderr: str(j.stderr),
    exitCode: num(j.exit_code),
    outcome: str(j.outcome) as ExecOutcome,
    stdoutTruncated: j.stdout_truncated === true,
    stderrTruncated: j.stderr_truncated === true,
  };
  if (typeof j.crash === 'string') out.crash = j.crash;
  if (typeof j.result === 'string') out.result = j.result;
  if (Array.isArray(j.results)) {
    const results = j.results.map(resultFromJson).filter((x): x is RichResult => x !== undefined);
    if (results.length) out.results = results;
  }
  if (j.results_truncated === true) out.resultsTruncated = true;
  if (j.side_effects && typeof j.side_effects === 'object') out.sideEffects = toSideEffects(j.side_effects as Json);
  return out;
}

function toFile(j: Json): FileInfo {
  return { path: str(j.path), name: str(j.name), type: str(j.type) as FileType, size: num(j.size), mode: num(j.mode), mtime: str(j.mtime) };
}

export function httpBackend(opts: HttpBackendOptions): McpBackend {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const languages = new Map<string, Language>();
  const remember = (s: SessionInfo): SessionInfo => { languages.set(s.id, s.language); return s; };
  const sid = (id: string): string => encodeURIComponent(id);

  async function call(method: string, path: string, body?: Json | Buffer, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
    let payload: string | Uint8Array<ArrayBuffer> | undefined;
    if (Buffer.isBuffer(body)) {
      headers['content-type'] = 'application/octet-stream';
      payload = new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)) as Uint8Array<ArrayBuffer>;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers, ...(payload !== undefined ? { body: payload } : {}), ...(signal ? { signal } : {}) });
    } catch (e) {
      if (signal?.aborted) throw new ForkboxError('InvalidRequest', 499, 'the call was cancelled');
      throw new ForkboxError('Overloaded', 503,
        `cannot reach the forkbox server at ${base} (${(e as Error).message}): check FORKBOX_BASE_URL and that the server runs`,
        { retryAfter: 5 });
    }
    if (res.ok) return res;
    const text = await res.text();
    let env: Json = {};
    try { env = JSON.parse(text) as Json; } catch { /* not an envelope */ }
    const retry = Number(res.headers.get('retry-after'));
    throw new ForkboxError((typeof env.code === 'string' ? env.code : 'Internal') as ErrorCode, res.status,
      typeof env.error === 'string' ? env.error : `HTTP ${res.status} from ${method} ${path}`,
      Number.isFinite(retry) && retry > 0 ? { retryAfter: retry } : {});
  }
  const json = async (method: string, path: string, body?: Json | Buffer, signal?: AbortSignal): Promise<Json> =>
    (await (await call(method, path, body, signal)).json()) as Json;
  const files = (id: string, path: string, extra = ''): string =>
    `/v1/sessions/${sid(id)}/files?path=${encodeURIComponent(path)}${extra}`;

  return {
    async runCode(req, signal) {
      const body: Json = { code: req.code, language: req.language, timeout_seconds: req.timeoutSeconds };
      if (req.template !== undefined) body.template = req.template;
      return toRun(await json('POST', '/v1/exec', body, signal));
    },
    async createSession(req, signal) {
      const body: Json = { language: req.language };
      if (req.template !== undefined) body.template = req.template;
      if (req.name !== undefined) body.name = req.name;
      if (req.timeoutSeconds !== undefined) body.timeout_seconds = req.timeoutSeconds;
      if (req.idleTimeoutSeconds !== undefined) body.idle_timeout_seconds = req.idleTimeoutSeconds;
      if (req.env !== undefined) body.env = req.env;
      if (req.metadata !== undefined) body.metadata = req.metadata;
      return remember(toSession(await json('POST', '/v1/sessions', body, signal)));
    },
    async execSession(id, req, signal) {
      let language = languages.get(id);
      if (language === undefined) language = remember(toSession(await json('GET', `/v1/sessions/${sid(id)}`, undefined, signal))).language;
      const body: Json = { code: req.code, language, timeout_seconds: req.timeoutSeconds };
      if (req.discard) body.discard = true;
      return toRun(await json('POST', `/v1/sessions/${sid(id)}/exec`, body, signal));
    },
    async writeFile(id, path, data) {
      await call('PUT', files(id, path, '&parents=true'), data);
    },
    async readFile(id, path) {
      const res = await call('GET', files(id, path));
      if ((res.headers.get('content-type') ?? '').startsWith('application/json')) {
        throw new ForkboxError('InvalidRequest', 400, `${path} is a directory: use list_files`);
      }
      return Buffer.from(await res.arrayBuffer());
    },
    async listFiles(id, path) {
      const res = await call('GET', files(id, path));
      if (!(res.headers.get('content-type') ?? '').startsWith('application/json')) {
        throw new ForkboxError('InvalidRequest', 400, `${path} is a file, not a directory: use read_file`);
      }
      const j = (await res.json()) as Json;
      return Array.isArray(j.entries) ? j.entries.map((e: Json) => toFile(e)) : [];
    },
    async forkSession(id, count) {
      const j = await json('POST', `/v1/sessions/${sid(id)}/fork`, { count });
      return Array.isArray(j.sessions) ? j.sessions.map((s: Json) => remember(toSession(s))) : [];
    },
    pauseSession: async (id) => remember(toSession(await json('POST', `/v1/sessions/${sid(id)}/pause`))),
    async deleteSession(id) {
      await call('DELETE', `/v1/sessions/${sid(id)}`);
      languages.delete(id);
    },
  };
}
