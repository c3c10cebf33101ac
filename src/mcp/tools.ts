// tools.ts — the forkbox MCP tools: their JSON schemas and descriptions (written
// for a model to read), argument checking, the calls into a backend, and how
// results read as MCP content (text, plus image content for PNG/JPEG outputs).
// Every failure, a bad argument included, is a tool result with isError: true
// and a short remediation; nothing here throws into the protocol layer.
import { LANGUAGES, type Language } from '../engine/types.js';
import type { FileInfo, SessionInfo } from '../engine/session-types.js';
import { ForkboxError, asForkboxError } from '../lib/errors.js';
import { log } from '../lib/log.js';
import { FORMAT_EXTENSIONS } from '../languages/rich.js';
import type { McpBackend, RunOutput } from './backend.js';

export interface ToolOptions {
  /** Largest timeout_seconds a call may ask for (default 300). */
  maxTimeoutSeconds?: number;
  /** Largest file read_file returns, bytes (default 1 MiB). */
  maxReadBytes?: number;
  /** Most sessions one fork_session call makes (default 16). */
  maxForkCount?: number;
}

export type Content =
  | { type: 'text'; text: string }
  | { type: 'image'; data: string; mimeType: string };

export interface ToolResult {
  content: Content[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
  [k: string]: unknown;
}

export interface ToolDef {
  name: string;
  title: string;
  description: string;
  inputSchema: { type: 'object'; properties: Record<string, Prop>; required?: string[]; additionalProperties: false };
  annotations: { readOnlyHint?: boolean; destructiveHint?: boolean; idempotentHint?: boolean; openWorldHint: boolean };
}

interface Prop {
  type: 'string' | 'number' | 'integer' | 'boolean' | 'object';
  description: string;
  enum?: readonly string[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  additionalProperties?: { type: 'string' };
}

const DEFAULT_TIMEOUT = 30;
const MiB = 1024 * 1024;

const sessionId: Prop = { type: 'string', minLength: 1, maxLength: 128, description: 'The session id returned by create_session or fork_session.' };
const path = (what: string, def?: string): Prop => ({
  type: 'string', minLength: 1, maxLength: 4096, pattern: '^/',
  description: `Absolute path inside the session, ${what}. Code runs with /tmp as its working directory.`,
  ...(def !== undefined ? { default: def } : {}),
});
const stringMap = (description: string): Prop => ({ type: 'object', additionalProperties: { type: 'string' }, description });

/** The tool list; limits come from the options. */
export function toolDefs(opts: ToolOptions = {}): ToolDef[] {
  const maxTimeout = opts.maxTimeoutSeconds ?? 300;
  const timeout = (what: string): Prop => ({
    type: 'number', exclusiveMinimum: 0, maximum: maxTimeout, default: Math.min(DEFAULT_TIMEOUT, maxTimeout),
    description: `Wall-clock limit for ${what}, in seconds (at most ${maxTimeout}). Past it the code is stopped and exit_code is 124.`,
  });
  const language: Prop = { type: 'string', enum: LANGUAGES, default: 'python', description: 'Language of the code. Python 3.11 with numpy.' };
  const obj = (properties: Record<string, Prop>, required: string[]): ToolDef['inputSchema'] =>
    ({ type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false });
  return [
    {
      name: 'run_code',
      title: 'Run code in a fresh sandbox',
      description: 'Runs a program once in a brand-new isolated sandbox (a micro-VM forked from a snapshot in well under a ' +
        'millisecond) and returns its stdout, stderr and exit code. Nothing persists between calls: use create_session ' +
        'and exec_in_session to keep variables and files. No network. Print what you want to see. A program failing ' +
        '(an exception, a non-zero exit) is a normal result, not a tool error.',
      inputSchema: obj({
        code: { type: 'string', minLength: 1, maxLength: 1024 * 1024, description: 'The complete program source, e.g. "print(1 + 1)".' },
        language,
        timeout_seconds: timeout('the whole run'),
        template: { type: 'string', minLength: 1, maxLength: 128, description: "A named template with preloaded packages; omit it for the language's default." },
      }, ['code']),
      annotations: { openWorldHint: false },
    },
    {
      name: 'create_session',
      title: 'Create a sandbox session',
      description: 'Creates a sandbox that lives across calls: the variables, imports and files of one exec_in_session ' +
        'are there for the next. Returns session_id. Delete it with delete_session when done; it also expires by itself ' +
        '(timeout_seconds) and is paused to disk when idle (the next call resumes it).',
      inputSchema: obj({
        language,
        template: { type: 'string', minLength: 1, maxLength: 128, description: "A named template with preloaded packages (e.g. python-data); omit it for the language's default." },
        name: { type: 'string', minLength: 1, maxLength: 64, description: 'Optional unique label for the session.' },
        timeout_seconds: { type: 'number', exclusiveMinimum: 0, description: "Lifetime in seconds from creation (the server's default and maximum apply)." },
        idle_timeout_seconds: { type: 'number', exclusiveMinimum: 0, description: 'Seconds without a call after which the session is paused to disk.' },
        env: stringMap('Environment variables for every exec in the session.'),
        metadata: stringMap('Your own string labels, returned as given.'),
      }, []),
      annotations: { openWorldHint: false },
    },
    {
      name: 'exec_in_session',
      title: 'Run code in a session',
      description: 'Runs code inside an existing session, like a notebook cell: globals, imports and files from earlier ' +
        'calls are kept. Returns stdout, stderr, exit code, the repr of a last expression (result) and the files the code ' +
        'created, changed or deleted. With discard: true it runs in a throwaway copy and the session is left untouched.',
      inputSchema: obj({
        session_id: sessionId,
        code: { type: 'string', minLength: 1, maxLength: 1024 * 1024, description: 'Source to run in the session.' },
        timeout_seconds: timeout('this exec'),
        discard: { type: 'boolean', default: false, description: 'Run in a throwaway fork; the session keeps its state.' },
      }, ['session_id', 'code']),
      annotations: { openWorldHint: false },
    },
    {
      name: 'write_file',
      title: 'Write a file into a session',
      description: 'Creates or replaces a file in a session (missing parent directories are created). Code in the session ' +
        'sees it at once. Text is written as UTF-8; send binary data base64-encoded with encoding: "base64".',
      inputSchema: obj({
        session_id: sessionId,
        path: path('e.g. /tmp/data.csv'),
        content: { type: 'string', maxLength: 16 * MiB, description: 'The file content (text, or base64 with encoding "base64").' },
        encoding: { type: 'string', enum: ['utf8', 'base64'], default: 'utf8', description: 'How content is encoded.' },
      }, ['session_id', 'path', 'content']),
      annotations: { idempotentHint: true, openWorldHint: false },
    },
    {
      name: 'read_file',
      title: 'Read a file from a session',
      description: 'Returns a file from a session: UTF-8 text as text, PNG and JPEG images as images, other binary data ' +
        `as base64. Files larger than ${Math.round((opts.maxReadBytes ?? MiB) / 1024)} KiB are cut at that size.`,
      inputSchema: obj({
        session_id: sessionId,
        path: path('e.g. /tmp/out.txt'),
        encoding: { type: 'string', enum: ['auto', 'base64'], default: 'auto', description: '"base64" always returns base64 text.' },
      }, ['session_id', 'path']),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    {
      name: 'list_files',
      title: 'List a directory in a session',
      description: 'Lists one directory of a session: each entry with its type, size in bytes and path.',
      inputSchema: obj({ session_id: sessionId, path: path('of a directory', '/tmp') }, ['session_id']),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    {
      name: 'fork_session',
      title: 'Fork a session',
      description: 'Makes copies of a session as it is now (memory and files), e.g. to try several approaches from one ' +
        'state in parallel. Returns the new session ids; the original is unchanged. Each copy must be deleted on its own.',
      inputSchema: obj({
        session_id: sessionId,
        count: { type: 'integer', minimum: 1, maximum: opts.maxForkCount ?? 16, default: 1, description: 'How many copies.' },
      }, ['session_id']),
      annotations: { openWorldHint: false },
    },
    {
      name: 'pause_session',
      title: 'Pause a session',
      description: 'Writes a session to disk and frees its memory. Nothing is lost: the next call on it resumes it.',
      inputSchema: obj({ session_id: sessionId }, ['session_id']),
      annotations: { idempotentHint: true, openWorldHint: false },
    },
    {
      name: 'delete_session',
      title: 'Delete a session',
      description: 'Deletes a session and everything in it. Its id stops working.',
      inputSchema: obj({ session_id: sessionId }, ['session_id']),
      annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
  ];
}

class ArgError extends Error {}

/** Checks `args` against a tool's schema (the subset toolDefs uses) and fills in defaults. */
export function checkArgs(def: ToolDef, args: unknown): Record<string, unknown> {
  if (args === undefined || args === null) args = {};
  if (typeof args !== 'object' || Array.isArray(args)) throw new ArgError('arguments must be an object');
  const a = { ...(args as Record<string, unknown>) };
  const { properties, required = [] } = def.inputSchema;
  for (const k of Object.keys(a)) {
    if (!(k in properties)) throw new ArgError(`unknown argument "${k}" (expected: ${Object.keys(properties).join(', ')})`);
  }
  for (const k of required) if (a[k] === undefined) throw new ArgError(`missing required argument "${k}"`);
  for (const [k, p] of Object.entries(properties)) {
    const v = a[k];
    if (v === undefined) {
      if (p.default !== undefined) a[k] = p.default;
      continue;
    }
    const fail = (why: string): never => { throw new ArgError(`argument "${k}" ${why}`); };
    switch (p.type) {
      case 'string':
        if (typeof v !== 'string') fail('must be a string');
        break;
      case 'boolean':
        if (typeof v !== 'boolean') fail('must be true or false');
        break;
      case 'number':
      case 'integer':
        if (typeof v !== 'number' || !Number.isFinite(v)) fail('must be a number');
        if (p.type === 'integer' && !Number.isInteger(v)) fail('must be a whole number');
        break;
      case 'object':
        if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('must be an object of string values');
        for (const [mk, mv] of Object.entries(v as object)) if (typeof mv !== 'string') fail(`must map names to strings ("${mk}" is not a string)`);
        break;
    }
    if (typeof v === 'string') {
      if (p.minLength !== undefined && v.length < p.minLength) fail(v.length === 0 ? 'must not be empty' : `must be at least ${p.minLength} characters`);
      if (p.maxLength !== undefined && v.length > p.maxLength) fail(`must be at most ${p.maxLength} characters`);
      if (p.pattern !== undefined && !new RegExp(p.pattern).test(v)) fail(p.pattern === '^/' ? 'must be an absolute path (start with /)' : `must match ${p.pattern}`);
      if (p.enum !== undefined && !p.enum.includes(v)) fail(`must be one of: ${p.enum.join(', ')}`);
      if (v.includes('\0')) fail('must not contain NUL characters');
    }
    if (typeof v === 'number') {
      if (p.exclusiveMinimum !== undefined && v <= p.exclusiveMinimum) fail(`must be greater than ${p.exclusiveMinimum}`);
      if (p.minimum !== undefined && v < p.minimum) fail(`must be at least ${p.minimum}`);
      if (p.maximum !== undefined && v > p.maximum) fail(`must be at most ${p.maximum}`);
    }
  }
  return a;
}

/** A short next step for each kind of failure, so a model can recover on its own. */
function remedy(e: ForkboxError, tool: string): string {
  const retry = e.retryAfter !== undefined ? `retry after ${e.retryAfter} s` : 'retry shortly';
  switch (e.code) {
    case 'Gone': return 'the session is gone for good (expired, deleted or its program ended it): create a new one with create_session';
    case 'NotFound': return tool === 'read_file' || tool === 'list_files' || tool === 'write_file'
      ? 'check the path (list_files shows a directory) and the session_id'
      : 'no such session: check session_id, or create a new one with create_session';
    case 'Conflict': return tool === 'create_session' ? 'pick another name, or use the session that has it'
      : 'the session is running another call: wait for it to finish, or fork_session to work in parallel';
    case 'InvalidRequest': return 'fix the arguments and call again';
    case 'PayloadTooLarge': return 'too large: print less, or write and read smaller files';
    case 'RateLimited': return `too many calls: ${retry}`;
    case 'Overloaded': case 'MemoryBudgetExceeded': case 'TemplateNotReady': case 'ShuttingDown': return `the server is busy: ${retry}`;
    case 'Unauthorized': case 'Forbidden': return 'check the API key the MCP server was started with (FORKBOX_API_KEY)';
    case 'Unsupported': return tool === 'run_code' ? 'use a supported language or template' : 'use run_code instead';
    default: return `${retry}; if it persists, report it to the operator`;
  }
}

/** Client-facing text of errors whose own message may carry host paths or native detail (as the REST API hides them). */
const HIDDEN: Partial<Record<string, string>> = {
  Internal: 'internal error',
  KvmUnavailable: 'the server cannot run sandboxes (KVM is unavailable)',
  TemplateBuildFailed: 'the language template could not be built or loaded',
  ImageBuildFailed: 'the language image could not be built',
  SandboxCrashed: 'the sandbox crashed',
};

export function toolError(e: unknown, tool: string, local = false): ToolResult {
  let text: string;
  if (e instanceof ArgError) {
    text = `invalid arguments for ${tool}: ${e.message}; fix the arguments and call again`;
  } else {
    const fe = asForkboxError(e);
    const hidden = HIDDEN[fe.code];
    // Platform failures keep their detail in the log; over the network the caller sees fixed text.
    if (hidden !== undefined) log.warn('mcp.tool_error', { tool, code: fe.code, message: fe.message });
    // The engine's Gone messages already say "create a new one": name the tool instead of repeating it.
    const message = !local && hidden !== undefined ? hidden : fe.message;
    text = fe.code === 'Gone' && /create a new one\s*$/.test(message)
      ? `${fe.code}: ${message} with create_session`
      : `${fe.code}: ${message}; ${remedy(fe, tool)}`;
  }
  return { content: [{ type: 'text', text }], isError: true };
}

function sessionJson(s: SessionInfo): Record<string, unknown> {
  return {
    session_id: s.id,
    ...(s.name !== undefined ? { name: s.name } : {}),
    language: s.language,
    state: s.state,
    created_at: s.createdAt,
    expires_at: s.expiresAt,
    idle_timeout_seconds: s.idleTimeoutSeconds,
    execs: s.execs,
    ...(s.parentId !== undefined ? { parent_id: s.parentId } : {}),
    ...(Object.keys(s.metadata).length ? { metadata: s.metadata } : {}),
  };
}

const jsonText = (v: unknown): Content => ({ type: 'text', text: JSON.stringify(v, null, 2) });

/** stdout, stderr, exit code (and a session exec's result and file changes) as text; images from rich outputs. */
export function runContent(r: RunOutput, timeoutSeconds: number, inSession = false): ToolResult {
  const parts: string[] = [];
  const section = (name: string, text: string, truncated: boolean): void => {
    parts.push(`${name}:\n${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${truncated ? `[${name} truncated]\n` : ''}`);
  };
  if (r.stdout !== '' || r.stdoutTruncated) section('stdout', r.stdout, r.stdoutTruncated);
  if (r.stderr !== '' || r.stderrTruncated) section('stderr', r.stderr, r.stderrTruncated);
  if (r.result !== undefined) parts.push(`result: ${r.result}\n`);
  let status = `exit_code: ${r.exitCode}`;
  if (r.outcome === 'timeout') status += ` (stopped: ran past timeout_seconds=${timeoutSeconds}; make it faster or raise timeout_seconds)`;
  else if (r.outcome === 'crashed') status += ` (the sandbox crashed${r.crash !== undefined ? `: ${r.crash.slice(0, 500)}` : ''})`;
  else if (r.outcome === 'cancelled') status += ' (cancelled)';
  if (inSession && (r.outcome === 'timeout' || r.outcome === 'crashed')) status += '\nthe session ended with it: create a new one with create_session';
  parts.push(status + '\n');
  const se = r.sideEffects;
  if (se && (se.filesCreated.length || se.filesModified.length || se.filesDeleted.length)) {
    const names = (l: Array<{ path: string }>): string => l.slice(0, 50).map((f) => f.path).join(', ') + (l.length > 50 ? ', …' : '');
    const lines: string[] = [];
    if (se.filesCreated.length) lines.push(`files created: ${names(se.filesCreated)}`);
    if (se.filesModified.length) lines.push(`files modified: ${names(se.filesModified)}`);
    if (se.filesDeleted.length) lines.push(`files deleted: ${names(se.filesDeleted)}`);
    parts.push(lines.join('\n') + '\n');
  }
  const content: Content[] = [{ type: 'text', text: parts.join('\n') }];
  // Rich outputs: a PNG or JPEG as image content; anything else as its text (or, without one, its formats).
  const results = r.results ?? [];
  results.forEach((res, i) => {
    const name = res.isMainResult ? 'result' : `display ${i + 1}`;
    if (res.png) content.push({ type: 'image', data: res.png, mimeType: 'image/png' });
    else if (res.jpeg) content.push({ type: 'image', data: res.jpeg, mimeType: 'image/jpeg' });
    else if (res.isMainResult && r.result !== undefined) return; // already in the text above
    else if (res.text !== undefined) content.push({ type: 'text', text: `${name}: ${res.text}` });
    else {
      const formats = FORMAT_EXTENSIONS.filter(([f]) => res[f] !== undefined).map(([f]) => f);
      content.push({ type: 'text', text: `${name}: [${formats.join(', ') || 'no text'}]` });
    }
  });
  if (r.resultsTruncated) content.push({ type: 'text', text: '[rich outputs truncated: at most 16 per exec, about 900 KiB in all]' });
  const structured: Record<string, unknown> = {
    stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode, outcome: r.outcome,
    stdout_truncated: r.stdoutTruncated, stderr_truncated: r.stderrTruncated,
  };
  if (r.result !== undefined) structured.result = r.result;
  if (results.length || r.resultsTruncated) {
    // Images stay in the image items: the structured copy names their formats without the base64.
    structured.results = results.map((res) => ({ formats: FORMAT_EXTENSIONS.filter(([f]) => res[f] !== undefined).map(([f]) => f),
      ...(res.text !== undefined ? { text: res.text } : {}), is_main_result: res.isMainResult }));
    structured.results_truncated = r.resultsTruncated === true;
  }
  return { content, structuredContent: structured };
}

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JPEG = Buffer.from([0xff, 0xd8, 0xff]);

/** A file as content: text when it is UTF-8 without NULs, an image when PNG/JPEG, else base64. */
export function fileContent(path: string, data: Buffer, encoding: string, maxBytes: number): ToolResult {
  const cut = data.length > maxBytes;
  const bytes = cut ? data.subarray(0, maxBytes) : data;
  const note = cut ? `\n[${path}: showing the first ${maxBytes} of ${data.length} bytes]` : '';
  const meta = { path, size: data.length, truncated: cut };
  if (encoding !== 'base64' && !cut) {
    if (bytes.subarray(0, 8).equals(PNG)) return { content: [{ type: 'image', data: bytes.toString('base64'), mimeType: 'image/png' }], structuredContent: meta };
    if (bytes.subarray(0, 3).equals(JPEG)) return { content: [{ type: 'image', data: bytes.toString('base64'), mimeType: 'image/jpeg' }], structuredContent: meta };
  }
  if (encoding !== 'base64') {
    const text = bytes.toString('utf8');
    if (!text.includes('\0') && !text.includes('\uFFFD')) return { content: [{ type: 'text', text: text + note }], structuredContent: { ...meta, encoding: 'utf8' } };
  }
  return {
    content: [{ type: 'text', text: `base64 (${data.length} bytes, binary):\n${bytes.toString('base64')}${note}` }],
    structuredContent: { ...meta, encoding: 'base64' },
  };
}

function listingText(dir: string, entries: FileInfo[]): string {
  if (entries.length === 0) return `${dir} is empty`;
  const shown = entries.slice(0, 1000);
  const lines = shown.map((e) => `${e.type.padEnd(7)} ${String(e.size).padStart(10)}  ${e.path}`);
  if (entries.length > shown.length) lines.push(`… and ${entries.length - shown.length} more`);
  return `${dir} (${entries.length} entries: type, size in bytes, path)\n${lines.join('\n')}`;
}

/** The tool layer: list the tools, call one. `local`: errors may show full detail (stdio, embedded). */
export class ForkboxTools {
  readonly defs: ToolDef[];
  readonly #byName: Map<string, ToolDef>;
  readonly #maxRead: number;

  constructor(private readonly backend: McpBackend, opts: ToolOptions = {}, private readonly local = false) {
    this.defs = toolDefs(opts);
    this.#byName = new Map(this.defs.map((d) => [d.name, d]));
    this.#maxRead = opts.maxReadBytes ?? MiB;
  }

  async call(name: string, args: unknown, signal: AbortSignal = new AbortController().signal): Promise<ToolResult> {
    const def = this.#byName.get(name);
    if (!def) {
      return { content: [{ type: 'text', text: `unknown tool "${name}"; the tools are: ${this.defs.map((d) => d.name).join(', ')}` }], isError: true };
    }
    try {
      return await this.#run(name, checkArgs(def, args), signal);
    } catch (e) {
      return toolError(e, name, this.local);
    }
  }

  async #run(name: string, a: Record<string, unknown>, signal: AbortSignal): Promise<ToolResult> {
    const b = this.backend;
    const s = (k: string): string => a[k] as string;
    const opt = <T>(k: string): T | undefined => a[k] as T | undefined;
    switch (name) {
      case 'run_code': {
        const t = a.timeout_seconds as number;
        const r = await b.runCode({ code: s('code'), language: s('language') as Language, timeoutSeconds: t,
          ...(opt<string>('template') !== undefined ? { template: s('template') } : {}) }, signal);
        return runContent(r, t);
      }
      case 'create_session': {
        const info = await b.createSession({
          language: s('language') as Language,
          ...(opt('template') !== undefined ? { template: s('template') } : {}),
          ...(opt('name') !== undefined ? { name: s('name') } : {}),
          ...(opt('timeout_seconds') !== undefined ? { timeoutSeconds: a.timeout_seconds as number } : {}),
          ...(opt('idle_timeout_seconds') !== undefined ? { idleTimeoutSeconds: a.idle_timeout_seconds as number } : {}),
          ...(opt('env') !== undefined ? { env: a.env as Record<string, string> } : {}),
          ...(opt('metadata') !== undefined ? { metadata: a.metadata as Record<string, string> } : {}),
        }, signal);
        return { content: [jsonText(sessionJson(info))], structuredContent: sessionJson(info) };
      }
      case 'exec_in_session': {
        const t = a.timeout_seconds as number;
        const r = await b.execSession(s('session_id'), { code: s('code'), timeoutSeconds: t, ...(a.discard === true ? { discard: true } : {}) }, signal);
        return runContent(r, t, true);
      }
      case 'write_file': {
        let data: Buffer;
        if (a.encoding === 'base64') {
          const c = s('content').replace(/\s+/g, '');
          if (!/^[A-Za-z0-9+/]*={0,2}$/.test(c) || c.length % 4 === 1) throw new ArgError('argument "content" is not valid base64');
          data = Buffer.from(c, 'base64');
        } else {
          data = Buffer.from(s('content'), 'utf8');
        }
        await b.writeFile(s('session_id'), s('path'), data);
        return { content: [{ type: 'text', text: `wrote ${data.length} bytes to ${s('path')}` }], structuredContent: { path: s('path'), size: data.length } };
      }
      case 'read_file':
        return fileContent(s('path'), await b.readFile(s('session_id'), s('path')), s('encoding'), this.#maxRead);
      case 'list_files': {
        const entries = await b.listFiles(s('session_id'), s('path'));
        return { content: [{ type: 'text', text: listingText(s('path'), entries) }],
          structuredContent: { path: s('path'), entries: entries.map((e) => ({ path: e.path, type: e.type, size: e.size })) } };
      }
      case 'fork_session': {
        const forks = await b.forkSession(s('session_id'), a.count as number);
        const ids = forks.map((f) => f.id);
        return { content: [{ type: 'text', text: `forked ${s('session_id')} into ${ids.length} new session(s): ${ids.join(', ')}` }],
          structuredContent: { session_ids: ids, sessions: forks.map(sessionJson) } };
      }
      case 'pause_session': {
        const info = await b.pauseSession(s('session_id'));
        return { content: [{ type: 'text', text: `paused ${info.id} (state: ${info.state}); the next call on it resumes it` }], structuredContent: sessionJson(info) };
      }
      case 'delete_session':
        await b.deleteSession(s('session_id'));
        return { content: [{ type: 'text', text: `deleted session ${s('session_id')}` }], structuredContent: { session_id: s('session_id'), deleted: true } };
    }
    throw new ForkboxError('Internal', 500, `tool ${name} has no implementation`);
  }
}
