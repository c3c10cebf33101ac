// http.ts — the one HTTP client of the SDK: base URL and API key from the
// arguments or FORKBOX_BASE_URL / FORKBOX_API_KEY, a client-side timeout per
// call, JSON or raw bodies in and out, and the error envelope
// `{"error": "<message>", "code", "request_id"}` mapped to the class named by `code`.
import { ConnectionError, ERROR_CLASSES, ForkboxError, UnexpectedResponse, anySignal, envVar } from './core.js';
export class Http {
    baseUrl;
    margin;
    #apiKey;
    #fetch;
    constructor(apiKey, baseUrl, options = {}) {
        this.#apiKey = apiKey ?? envVar('FORKBOX_API_KEY');
        this.baseUrl = (baseUrl ?? envVar('FORKBOX_BASE_URL') ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
        const f = options.fetch ?? globalThis.fetch;
        if (!f)
            throw new ForkboxError('ConnectionError', 0, 'no fetch implementation: use Node 18+ or pass options.fetch');
        this.#fetch = f;
        this.margin = options.requestMarginSeconds ?? 30;
    }
    /** A JSON call (the API's usual shape); 204 gives undefined. */
    async json(method, path, body, timeoutSeconds, signal, okOn503 = false) {
        const res = await this.call(method, path, { ...(body !== undefined ? { json: body } : {}), timeoutSeconds, ...(signal ? { signal } : {}), okOn503 });
        if (res.status === 204)
            return undefined;
        const text = new TextDecoder().decode(res.body);
        try {
            return JSON.parse(text);
        }
        catch {
            throw new UnexpectedResponse('UnexpectedResponse', res.status, `server answered ${res.status} with non-JSON body`);
        }
    }
    /** Any call: throws the API's error class for a 4xx/5xx (unless okOn503 and a health body); returns status, type and bytes. */
    async call(method, path, o) {
        const headers = { accept: 'application/json' };
        let body = null;
        if (o.json !== undefined) {
            headers['content-type'] = 'application/json';
            body = JSON.stringify(o.json);
        }
        else if (o.raw !== undefined) {
            headers['content-type'] = o.contentType ?? 'application/octet-stream';
            body = o.raw;
        }
        if (this.#apiKey !== undefined)
            headers.authorization = `Bearer ${this.#apiKey}`;
        const timeout = AbortSignal.timeout(Math.ceil(o.timeoutSeconds * 1000));
        const sig = o.signal ? anySignal(o.signal, timeout) : timeout;
        let res;
        let bytes;
        try {
            res = await this.#fetch(this.baseUrl + path, { method, headers, body: body, signal: sig });
            bytes = new Uint8Array(await res.arrayBuffer());
        }
        catch (e) {
            if (o.signal?.aborted)
                throw e; // the caller cancelled: rethrow their AbortError as is
            const why = timeout.aborted ? `no answer within ${o.timeoutSeconds} s` : e.message;
            throw new ConnectionError('ConnectionError', 0, `cannot reach ${this.baseUrl}: ${why}`, undefined, undefined, e);
        }
        const contentType = res.headers.get('content-type') ?? '';
        if (res.ok)
            return { status: res.status, contentType, body: bytes };
        const text = new TextDecoder().decode(bytes);
        let json;
        try {
            json = JSON.parse(text);
        }
        catch {
            json = undefined;
        }
        if (o.okOn503 && res.status === 503 && json && typeof json === 'object' && 'status' in json)
            return { status: res.status, contentType, body: bytes };
        const requestId = res.headers.get('x-request-id') ?? undefined;
        const ra = res.headers.get('retry-after');
        const retryAfter = ra !== null && /^\d+$/.test(ra) ? Number(ra) : undefined;
        const env = json && typeof json === 'object' ? json : undefined;
        const nested = env && typeof env.error === 'object' && env.error !== null
            ? env.error : undefined;
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
