// mcp-fake-engine.ts — an in-memory Engine + SessionEngine for the MCP unit
// tests (no VM). Programs are one line: "echo X", "exit N", "cat PATH" (prints a
// session file), "save PATH TEXT" (writes one), "png" (a rich output carrying a
// PNG), "timeout" (an exec past its deadline), "sleep MS", "boom" (a platform
// error with host detail).
import type { Engine, EngineHealth, ExecRequest, ExecResult } from '../../src/engine/types.js';
import type { FileInfo, SessionCreate, SessionEngine, SessionExecRequest, SessionExecResult, SessionInfo } from '../../src/engine/session-types.js';
import { conflict, gone, internal, notFound } from '../../src/lib/errors.js';

export const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

interface Sess { info: SessionInfo; files: Map<string, Buffer>; deleted: boolean }

export class FakeEngine implements Engine, SessionEngine {
  seen: ExecRequest[] = [];
  running = 0;
  maxRunning = 0;
  /** Execs stopped by their AbortSignal. */
  aborted = 0;
  private n = 0;
  private sessions = new Map<string, Sess>();

  async ready(): Promise<void> {}
  health(): EngineHealth {
    return { ready: true, templates: { python: { ready: true } }, pool: { ready: 1, target: 1, created: 1, taken: 0, misses: 0 }, liveForks: 0, inFlight: this.running };
  }
  async close(): Promise<void> {}

  private async program(code: string, files: Map<string, Buffer> | undefined, signal?: AbortSignal): Promise<ExecResult> {
    const [op, a1 = '', ...rest] = code.split(' ');
    const base = { id: `exec_${++this.n}`, stdout: '', stderr: '', exitCode: 0, outcome: 'exited' as const, stdoutTruncated: false,
      stderrTruncated: false, forkTimeMs: 0.1, execTimeMs: 1, totalTimeMs: 1.1 };
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      switch (op) {
        case 'echo': return { ...base, stdout: `${[a1, ...rest].join(' ')}\n` };
        case 'exit': return { ...base, stderr: 'Traceback: failed\n', exitCode: Number(a1) };
        case 'boom': throw internal('vmm failed at /var/lib/secret/path');
        case 'timeout': return { ...base, stderr: 'forkbox: execution timed out after 1 s\n', exitCode: 124, outcome: 'timeout' };
        case 'png': return { ...base, results: [{ text: '<Figure>', png: PNG_1X1, isMainResult: false }, { text: '{}', json: { a: 1 }, isMainResult: true }] };
        case 'sleep':
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, Number(a1));
            signal?.addEventListener('abort', () => { clearTimeout(t); this.aborted++; resolve(); }, { once: true });
          });
          return { ...base, stdout: 'slept\n' };
        case 'cat': {
          const f = files?.get(a1);
          return f ? { ...base, stdout: f.toString() } : { ...base, stderr: `FileNotFoundError: ${a1}\n`, exitCode: 1 };
        }
        case 'save':
          files?.set(a1, Buffer.from(rest.join(' ')));
          return base;
        default: return { ...base, stderr: `NameError: ${op}\n`, exitCode: 1 };
      }
    } finally {
      this.running--;
    }
  }

  async exec(req: ExecRequest, signal?: AbortSignal): Promise<ExecResult> {
    this.seen.push(req);
    return this.program(req.code, undefined, signal);
  }

  private get(owner: string, id: string): Sess {
    const s = this.sessions.get(id);
    if (!s || s.info.metadata.owner !== owner) throw notFound(`no session ${id}`);
    if (s.deleted) throw gone(`session ${id} was deleted; create a new one`);
    return s;
  }

  private make(owner: string, language: SessionInfo['language'], parentId?: string): Sess {
    const now = new Date().toISOString();
    const info: SessionInfo = { id: `sb_${++this.n}`, language, state: 'ready', createdAt: now, lastActiveAt: now, expiresAt: now,
      timeoutSeconds: 600, idleTimeoutSeconds: 60, metadata: { owner }, execs: 0, memoryBytes: 0, diskBytes: 0,
      ...(parentId !== undefined ? { parentId } : {}) };
    const s: Sess = { info, files: new Map(), deleted: false };
    this.sessions.set(info.id, s);
    return s;
  }

  /** Every session create request, as the engine received it. */
  created: SessionCreate[] = [];
  async createSession(req: SessionCreate): Promise<SessionInfo> {
    this.created.push(req);
    if (req.name === 'taken') throw conflict('name "taken" is in use');
    const s = this.make(req.owner, req.language);
    if (req.name !== undefined) s.info.name = req.name;
    return s.info;
  }
  listSessions(owner: string): SessionInfo[] { return [...this.sessions.values()].filter((s) => s.info.metadata.owner === owner).map((s) => s.info); }
  getSession(owner: string, id: string): SessionInfo { return this.get(owner, id).info; }
  async deleteSession(owner: string, id: string): Promise<void> { this.get(owner, id).deleted = true; }
  async execSession(owner: string, id: string, req: SessionExecRequest, signal?: AbortSignal): Promise<SessionExecResult> {
    const s = this.get(owner, id);
    this.seen.push(req);
    const before = new Set(s.files.keys());
    const r = await this.program(req.code, s.files, signal);
    s.info.execs++;
    const created = [...s.files.keys()].filter((k) => !before.has(k)).map((path) => ({ path, size: s.files.get(path)!.length }));
    return { ...r, sideEffects: { filesCreated: created, filesModified: [], filesDeleted: [], filesTruncated: false, pagesDirtied: 3, peakMemoryBytes: 1 } };
  }
  async forkSession(owner: string, id: string, count: number): Promise<SessionInfo[]> {
    const s = this.get(owner, id);
    return Array.from({ length: count }, () => {
      const c = this.make(owner, s.info.language, id);
      for (const [k, v] of s.files) c.files.set(k, v);
      return c.info;
    });
  }
  async pauseSession(owner: string, id: string): Promise<SessionInfo> {
    const s = this.get(owner, id);
    s.info.state = 'paused';
    return s.info;
  }
  private stat(path: string, data: Buffer): FileInfo {
    return { path, name: path.split('/').pop() ?? '', type: 'file', size: data.length, mode: 0o644, mtime: new Date(0).toISOString() };
  }
  async writeFile(owner: string, id: string, path: string, data: Buffer): Promise<FileInfo> {
    this.get(owner, id).files.set(path, data);
    return this.stat(path, data);
  }
  async readFile(owner: string, id: string, path: string): Promise<Buffer> {
    const f = this.get(owner, id).files.get(path);
    if (!f) throw notFound(`no file ${path}`);
    return f;
  }
  async statFile(owner: string, id: string, path: string): Promise<FileInfo> { return this.stat(path, await this.readFile(owner, id, path)); }
  async listFiles(owner: string, id: string, dir: string): Promise<FileInfo[]> {
    const prefix = dir.endsWith('/') ? dir : dir + '/';
    return [...this.get(owner, id).files].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => this.stat(k, v));
  }
  async removeFile(owner: string, id: string, path: string): Promise<void> { this.get(owner, id).files.delete(path); }
  async mkdir(owner: string, id: string, path: string): Promise<FileInfo> {
    this.get(owner, id);
    return { path, name: path.split('/').pop() ?? '', type: 'dir', size: 0, mode: 0o755, mtime: new Date(0).toISOString() };
  }
}
