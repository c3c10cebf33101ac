// rich.ts — rich outputs: what a runner displayed in one exec (display(obj), a
// figure, a session's last expression), each a MIME bundle. The runner writes
// `[{"data": {mime: value}, "main": true?}, …]`; this decodes it, bounded, into
// E2B code-interpreter `Result`s (text, html, png, …), so agents that render
// those render ours. The runner is guest code: nothing in its answer is trusted.

/** One displayed object, in the shape of E2B's code-interpreter `Result` (camelCase here, snake_case in JSON). */
export interface DisplayResult {
  /** text/plain (always present for a main result). */
  text?: string;
  html?: string;
  markdown?: string;
  /** image/svg+xml */
  svg?: string;
  /** image/png, base64 */
  png?: string;
  /** image/jpeg, base64 */
  jpeg?: string;
  /** application/pdf, base64 */
  pdf?: string;
  latex?: string;
  /** application/json: any JSON value */
  json?: unknown;
  javascript?: string;
  /** The value of a session exec's last expression (a notebook's "Out"), not a display() call. */
  isMainResult: boolean;
  /** Formats of other MIME types, by MIME type. */
  extra?: Record<string, unknown>;
}

/** At most this many results per exec (the runner's own limit; a rogue answer is cut here too). */
export const RESULTS_MAX = 16;
/** At most this many formats of other MIME types per result. */
export const EXTRA_FORMATS_MAX = 16;

type Field = Exclude<keyof DisplayResult, 'isMainResult' | 'extra'>;

/** MIME type → field, as E2B names them. */
export const MIME_FIELDS: ReadonlyMap<string, Field> = new Map<string, Field>([
  ['text/plain', 'text'], ['text/html', 'html'], ['text/markdown', 'markdown'], ['image/svg+xml', 'svg'],
  ['image/png', 'png'], ['image/jpeg', 'jpeg'], ['application/pdf', 'pdf'], ['text/latex', 'latex'],
  ['application/json', 'json'], ['application/javascript', 'javascript'],
]);

/** The formats a result has, as file extensions (for `--save-results`), in a stable order. */
export const FORMAT_EXTENSIONS: ReadonlyArray<[Field, string]> = [
  ['png', 'png'], ['jpeg', 'jpg'], ['svg', 'svg'], ['pdf', 'pdf'], ['html', 'html'], ['markdown', 'md'],
  ['latex', 'tex'], ['json', 'json'], ['javascript', 'js'], ['text', 'txt'],
];

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Decodes the runner's `results` (and its `results_truncated`): at most RESULTS_MAX results;
 * string formats must be strings (application/json may be any JSON value); anything malformed
 * is skipped and flagged as truncated, never thrown.
 */
export function decodeResults(raw: unknown, flagged: unknown): { results: DisplayResult[]; truncated: boolean } {
  let truncated = flagged === true;
  const results: DisplayResult[] = [];
  if (raw === undefined) return { results, truncated };
  if (!Array.isArray(raw)) return { results, truncated: true };
  for (const item of raw) {
    if (results.length >= RESULTS_MAX) { truncated = true; break; }
    if (!isObject(item) || !isObject(item.data)) { truncated = true; continue; }
    const r: DisplayResult = { isMainResult: item.main === true };
    const extra: Array<[string, unknown]> = [];
    for (const [mime, value] of Object.entries(item.data)) {
      const field = MIME_FIELDS.get(mime);
      if (field === 'json') { if (value !== null && value !== undefined) r.json = value; continue; }
      if (typeof value !== 'string') { truncated = true; continue; }
      if (field !== undefined) r[field] = value;
      else if (extra.length < EXTRA_FORMATS_MAX) extra.push([mime, value]);
      else truncated = true;
    }
    // Object.fromEntries defines own properties: a "__proto__" MIME key stays a plain key.
    if (extra.length) r.extra = Object.fromEntries(extra);
    results.push(r);
  }
  return { results, truncated };
}

/** A result as the API's JSON (E2B's wire names: snake_case). */
export function resultToJson(r: DisplayResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [, field] of MIME_FIELDS) if (r[field] !== undefined) out[field] = r[field];
  out.is_main_result = r.isMainResult;
  if (r.extra !== undefined) out.extra = r.extra;
  return out;
}

/** The inverse of resultToJson, for clients of the API (forkbox mcp over HTTP): unknown shapes are skipped. */
export function resultFromJson(j: unknown): DisplayResult | undefined {
  if (!isObject(j)) return undefined;
  const r: DisplayResult = { isMainResult: j.is_main_result === true };
  for (const [, field] of MIME_FIELDS) {
    const v = j[field];
    if (field === 'json') { if (v !== undefined && v !== null) r.json = v; } else if (typeof v === 'string') r[field] = v;
  }
  if (isObject(j.extra)) r.extra = Object.fromEntries(Object.entries(j.extra));
  return r;
}
