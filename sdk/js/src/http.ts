// http.ts — the one HTTP client of the SDK: base URL and API key from the
// arguments or FORKBOX_BASE_URL / FORKBOX_API_KEY, a client-side timeout per
// call, JSON or raw bodies in and out, and the error envelope
// `{"error": "<message>", "code", "request_id"}` mapped to the class named by `code`.
import { ConnectionError, ERROR_CLASSES, ForkboxError, UnexpectedResponse, anySignal, envVar, type SandboxOptions } from './core.js';

export interface RawCall {
  /** JSON body (sent as application/json) or raw bytes (application/octet-stream unless `contentType`). */
  json?: unknown;
  raw?: Uint8Array;
  contentType?: string;
  timeoutSeconds: number;
  signal?: AbortSignal;
  okOn503?: boolean;
}

export class Http {
  readonly baseUrl: string;
  readonly margin: number;
  readonly #apiKey: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(apiKey?: string, baseUrl?: string, options: SandboxOptions = {}) {
    this.#apiKey = apiKey ?? envVar('FORKBOX_API_KEY');
    this.baseUrl = (baseUrl ?? envVar('FORKBOX_BASE_URL') ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    const f = options.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
    if (!f) throw new ForkboxError('ConnectionError', 0, 'no fetch implementation: use Node 18+ or pass options.fetch');
    this.#fetch = f;
    this.margin = options.requestMarginSeconds ?? 30;
  }

  /** A JSON call (the API's usual shape); 204 gives undefined. */
  async json(method: string, path: string, body: unknown, timeoutSeconds: number, signal?: AbortSignal, okOn503 = false): Promise<unknown> {
    const res = await this.call(method, path, { ...(body !== undefined ? { json: body } : {}), timeoutSeconds, ...(signal ? { signal } : {}), okOn503 });
    if (res.status === 204) return undefined;
    const text = new TextDecoder().decode(res.body);
    try {
      return JSON.parse(text);
    } catch {
      throw new UnexpectedResponse('UnexpectedResponse', res.status, `server answered ${res.status} with non-JSON body`);
    }
  }

  /** Any call: throws the API's error class for a 4xx/5xx (unless okOn503 and a health body); returns status, type and bytes. */
  async call(method: string, path: string, o: RawCall): Promise<{ status: number; contentType: string; body: Uint8Array }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | Uint8Array | null = null;
    if (o.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(o.json);
    } else if (o.raw !== undefined) {
      headers['content-type'] = o.contentType ?? 'application/octet-stream';
      body = o.raw;
    }
    if (this.#apiKey !== undefined) headers.authorization = `Bearer ${this.#apiKey}`;
    const timeout = AbortSignal.timeout(Math.ceil(o.timeoutSeconds * 1000));
    const sig = o.signal ? anySignal(o.signal, timeout) : timeout;
    let res: Response;
    let bytes: Uint8Array;
    try {
      res = await this.#fetch(this.baseUrl + path, { method, headers, body: body as BodyInit | null, signal: sig });
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      if (o.signal?.aborted) throw e; // the caller cancelled: rethrow their AbortError as is
      const why = timeout.aborted ? `no answer within ${o.timeoutSeconds} s` : (e as Error).message;
      throw new ConnectionError('ConnectionError', 0, `cannot reach ${this.baseUrl}: ${why}`, undefined, undefined, e);
    }
    const contentType = res.headers.get('content-type') ?? '';
    if (res.ok) return { status: res.status, contentType, body: bytes };
    const text = new TextDecoder().decode(bytes);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (o.okOn503 && res.status === 503 && json && typeof json === 'object' && 'status' in json) return { status: res.status, contentType, body: bytes };
    const requestId = res.headers.get('x-request-id') ?? undefined;
    const ra = res.headers.get('retry-after');
    const retryAfter = ra !== null && /^\d+$/.test(ra) ? Number(ra) : undefined;
    // The envelope is {"error": "<message>", "code", "request_id"}; earlier forkbox servers nested
    // {"error": {"code", "message", "requestId"}}, which is still read.
    type Flat = { error?: unknown; code?: unknown; request_id?: unknown };
    const env: Flat | undefined = json && typeof json === 'object' ? json as Flat : undefined;
    const nested = env && typeof env.error === 'object' && env.error !== null
      ? env.error as { code?: unknown; message?: unknown; requestId?: unknown } : undefined;
    const code = nested ? nested.code : env?.code;
    if (typeof code === 'string') {
      const Cls = ERROR_CLASSES[code] ?? ForkboxError;
      const msg = nested ? nested.message : env?.error;
      const rid = nested ? nested.requestId : env?.request_id;
      throw new Cls(code, res.status, typeof msg === 'string' ? msg : code, typeof rid === 'string' ? rid : requestId, retryAfter);
    }
    throw new UnexpectedResponse('UnexpectedResponse', res.status, `server answered ${res.status}: ${text.slice(0, 200)}`, requestId, retryAfter);
  }
}
