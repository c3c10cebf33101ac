// fake-sessions.ts — an in-memory SessionEngine (and Engine) for the server,
// SDK and CLI tests: no VM. A session holds globals and a file tree; its
// "code" is ';'-separated ops: `print T`, `set K V`, `get K`, `write PATH T`,
// `rm PATH`, `expr V` (the result repr), `sleep MS`, `die` (poisons it).
// Errors follow the contract: 404 unknown/other owner, 409 busy or taken name, 410 closed/poisoned.
import { posix } from 'node:path';
import type { Engine, EngineHealth, ExecRequest, ExecResult } from '../../src/engine/types.js';
import type {
  FileInfo, SessionCreate, SessionEngine, SessionExecRequest, SessionExecResult, SessionInfo, SideEffects,
} from '../../src/engine/session-types.js';
import { conflict, gone, invalidRequest, notFound, payloadTooLarge } from '../../src/lib/errors.js';

interface Node { type: 'file' | 'dir'; data: Buffer; mode: number; mtime: number }
interface State { globals: Map<string, string>; files: Map<string, Node> }
interface Sess { owner: string; info: SessionInfo; state: State; busy: boolean }

const clone = (s: State): State => ({
  globals: new Map(s.globals),
  files: new Map([...s.files].map(([k, v]) => [k, { ...v, data: Buffer.from(v.data) }])),
});

export class FakeSessions implements Engine, SessionEngine {
  readonly sessions = new Map<string, Sess>();
  /** Bytes of file data a session may hold. */
  quotaBytes = 1024 * 1024;
  calls: string[] = [];
  private n = 0;

  async ready(): Promise<void> {}
  health(): EngineHealth {
    return { ready: true, templates: { python: { ready: true } }, pool: { ready: 1, target: 1, created: 1, taken: 0, misses: 0 }, liveForks: 0, inFlight: 0 };
  }
  async close(): Promise<void> {}
  async exec(req: ExecRequest): Promise<ExecResult> {
    return { id: 'exec_oneshot', stdout: req.code, stderr: '', exitCode: 0, outcome: 'exited', stdoutTruncated: false, stderrTruncated: false, forkTimeMs: 0, execTimeMs: 0, totalTimeMs: 0 };
  }

  private newInfo(req: { language: SessionInfo['language']; name?: string; timeoutSeconds: number; idleTimeoutSeconds: number; metadata: Record<string, string>; parentId?: string }): SessionInfo {
    const now = new Date().toISOString();
    return {
      id: `sess_${++this.n}`, ...(req.name !== undefined ? { name: req.name } : {}), language: req.language, state: 'ready',
      createdAt: now, lastActiveAt: now, expiresAt: new Date(Date.now() + req.timeoutSeconds * 1000).toISOString(),
      timeoutSeconds: req.timeoutSeconds, idleTimeoutSeconds: req.idleTimeoutSeconds, metadata: req.metadata, execs: 0,
      ...(req.parentId !== undefined ? { parentId: req.parentId } : {}), memoryBytes: 4096, diskBytes: 0,
    };
  }

  async createSession(req: SessionCreate): Promise<SessionInfo> {
    this.calls.push(`create ${req.owner}`);
    if (req.name !== undefined && this.listSessions(req.owner).some((s) => s.name === req.name)) throw conflict(`a session named "${req.name}" exists`);
    const info = this.newInfo({ language: req.language, ...(req.name !== undefined ? { name: req.name } : {}), timeoutSeconds: req.timeoutSeconds ?? 3600, idleTimeoutSeconds: req.idleTimeoutSeconds ?? 300, metadata: req.metadata ?? {} });
    const files = new Map<string, Node>([['/', { type: 'dir', data: Buffer.alloc(0), mode: 0o755, mtime: 0 }], ['/workspace', { type: 'dir', data: Buffer.alloc(0), mode: 0o755, mtime: 0 }]]);
    const globals = new Map<string, string>(Object.entries(req.env ?? {}));
    this.sessions.set(info.id, { owner: req.owner, info, state: { globals, files }, busy: false });
    return { ...info };
  }

  /** A live session of this owner, or 404/410. */
  private get(owner: string, id: string, use = true): Sess {
    const s = this.sessions.get(id);
    if (!s || s.owner !== owner) throw notFound(`no session ${id}`);
    if (s.info.state === 'closed') throw gone(`session ${id} was deleted or expired`);
    if (s.info.state === 'poisoned' && use) throw gone(`session ${id} died; delete it`);
    return s;
  }

  /** Marks a session expired (the reaper's work in the real engine). */
  expire(id: string): void {
    const s = this.sessions.get(id);
    if (s) s.info.state = 'closed';
  }

  listSessions(owner: string): SessionInfo[] {
    return [...this.sessions.values()].filter((s) => s.owner === owner && s.info.state !== 'closed').map((s) => ({ ...s.info }));
  }
  getSession(owner: string, id: string): SessionInfo {
    return { ...this.get(owner, id, false).info };
  }
  async deleteSession(owner: string, id: string): Promise<void> {
    const s = this.get(owner, id, false);
    if (s.busy) throw conflict(`session ${id} is busy`);
    s.info.state = 'closed';
  }

  private async use<T>(owner: string, id: string, fn: (s: Sess) => Promise<T> | T): Promise<T> {
    const s = this.get(owner, id);
    if (s.busy) throw conflict(`session ${id} is running an exec; one at a time`);
    s.busy = true;
    const was = s.info.state;
    s.info.state = 'running';
    try {
      return await fn(s);
    } finally {
      s.busy = false;
      if (s.info.state === 'running') s.info.state = was === 'paused' || was === 'ready' ? 'idle' : was;
      s.info.lastActiveAt = new Date().toISOString();
    }
  }

  async execSession(owner: string, id: string, req: SessionExecRequest): Promise<SessionExecResult> {
    this.calls.push(`exec ${id}${req.discard ? ' discard' : ''}`);
    return this.use(owner, id, async (s) => {
      const st = req.discard ? clone(s.state) : s.state;
      const fx: SideEffects = { filesCreated: [], filesModified: [], filesDeleted: [], filesTruncated: false, pagesDirtied: 0, peakMemoryBytes: 1 << 20 };
      let stdout = '';
      let result: string | undefined;
      let outcome: ExecResult['outcome'] = 'exited';
      for (const op of req.code.split(';').map((x) => x.trim()).filter(Boolean)) {
        const [cmd, a = '', ...rest] = op.split(' ');
        const b = rest.join(' ');
        if (cmd === 'print') stdout += [a, b].filter(Boolean).join(' ') + '\n';
        else if (cmd === 'set') { st.globals.set(a, b); fx.pagesDirtied++; }
        else if (cmd === 'get') stdout += (st.globals.get(a) ?? req.env?.[a] ?? '<unset>') + '\n';
        else if (cmd === 'expr') result = a;
        else if (cmd === 'sleep') await new Promise((r) => setTimeout(r, Number(a)));
        else if (cmd === 'write') {
          const existed = st.files.has(a);
          st.files.set(a, { type: 'file', data: Buffer.from(b), mode: 0o644, mtime: Date.now() });
          (existed ? fx.filesModified : fx.filesCreated).push({ path: a, size: Buffer.byteLength(b) });
        } else if (cmd === 'rm') { st.files.delete(a); fx.filesDeleted.push({ path: a }); }
        else if (cmd === 'die') { outcome = 'crashed'; if (!req.discard) s.info.state = 'poisoned'; break; }
      }
      if (!req.discard) s.info.execs++;
      const out: SessionExecResult = {
        id: `exec_${++this.n}`, stdout, stderr: '', exitCode: outcome === 'exited' ? 0 : 139, outcome,
        stdoutTruncated: false, stderrTruncated: false, forkTimeMs: 0, execTimeMs: 0.1, totalTimeMs: 0.2, sideEffects: fx,
      };
      if (result !== undefined) { out.result = result; out.resultTruncated = false; }
      return out;
    });
  }

  async forkSession(owner: string, id: string, count: number): Promise<SessionInfo[]> {
    return this.use(owner, id, (s) => Array.from({ length: count }, () => {
      const info = this.newInfo({ language: s.info.language, timeoutSeconds: s.info.timeoutSeconds, idleTimeoutSeconds: s.info.idleTimeoutSeconds, metadata: { ...s.info.metadata }, parentId: id });
      info.state = 'idle';
      this.sessions.set(info.id, { owner, info, state: clone(s.state), busy: false });
      return { ...info };
    }));
  }

  async pauseSession(owner: string, id: string): Promise<SessionInfo> {
    const s = this.get(owner, id);
    if (s.busy) throw conflict(`session ${id} is busy`);
    s.info.state = 'paused';
    s.info.memoryBytes = 0;
    s.info.diskBytes = 8192;
    return { ...s.info };
  }

  private info(path: string, n: Node): FileInfo {
    return { path, name: posix.basename(path) || '/', type: n.type, size: n.data.length, mode: n.mode, mtime: new Date(n.mtime).toISOString() };
  }
  private used(s: Sess): number {
    let n = 0;
    for (const f of s.state.files.values()) n += f.data.length;
    return n;
  }

  async writeFile(owner: string, id: string, path: string, data: Buffer, opts: { mode?: number; parents?: boolean } = {}): Promise<FileInfo> {
    return this.use(owner, id, async (s) => {
      const files = s.state.files;
      const parent = posix.dirname(path);
      if (!files.has(parent)) {
        if (!opts.parents) throw notFound(`${parent} does not exist`);
        await this.mkdirIn(s, parent);
      }
      if (files.get(parent)!.type !== 'dir') throw invalidRequest(`${parent} is not a directory`);
      if (files.get(path)?.type === 'dir') throw invalidRequest(`${path} is a directory`);
      const old = files.get(path)?.data.length ?? 0;
      if (this.used(s) - old + data.length > this.quotaBytes) throw payloadTooLarge(`session ${id} would hold more than its quota of ${this.quotaBytes} bytes`);
      const n: Node = { type: 'file', data: Buffer.from(data), mode: opts.mode ?? 0o644, mtime: Date.now() };
      files.set(path, n);
      return this.info(path, n);
    });
  }
  async readFile(owner: string, id: string, path: string): Promise<Buffer> {
    return this.use(owner, id, (s) => {
      const n = s.state.files.get(path);
      if (!n) throw notFound(`${path} does not exist`);
      if (n.type !== 'file') throw invalidRequest(`${path} is a directory`);
      return Buffer.from(n.data);
    });
  }
  async statFile(owner: string, id: string, path: string): Promise<FileInfo> {
    return this.use(owner, id, (s) => {
      const n = s.state.files.get(path);
      if (!n) throw notFound(`${path} does not exist`);
      return this.info(path, n);
    });
  }
  async listFiles(owner: string, id: string, path: string): Promise<FileInfo[]> {
    return this.use(owner, id, (s) => {
      const n = s.state.files.get(path);
      if (!n) throw notFound(`${path} does not exist`);
      if (n.type !== 'dir') throw invalidRequest(`${path} is not a directory`);
      return [...s.state.files].filter(([p]) => p !== path && posix.dirname(p) === path).map(([p, x]) => this.info(p, x)).sort((a, b) => a.name.localeCompare(b.name));
    });
  }
  async removeFile(owner: string, id: string, path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    return this.use(owner, id, (s) => {
      const files = s.state.files;
      const n = files.get(path);
      if (!n) throw notFound(`${path} does not exist`);
      const under = [...files.keys()].filter((p) => p.startsWith(path + '/'));
      if (n.type === 'dir' && under.length > 0 && !opts.recursive) throw conflict(`${path} is not empty`);
      for (const p of under) files.delete(p);
      files.delete(path);
    });
  }
  private async mkdirIn(s: Sess, path: string): Promise<Node> {
    const files = s.state.files;
    const parent = posix.dirname(path);
    if (!files.has(parent)) await this.mkdirIn(s, parent);
    const n: Node = { type: 'dir', data: Buffer.alloc(0), mode: 0o755, mtime: Date.now() };
    if (files.has(path)) throw conflict(`${path} exists`);
    files.set(path, n);
    return n;
  }
  async mkdir(owner: string, id: string, path: string): Promise<FileInfo> {
    return this.use(owner, id, async (s) => this.info(path, await this.mkdirIn(s, path)));
  }

  /** The file tree of a session: path → text (files) or '<dir>'. */
  tree(id: string, under = '/'): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [p, n] of this.sessions.get(id)!.state.files) {
      if (p === under || !(under === '/' || p.startsWith(under + '/'))) continue;
      out[p] = n.type === 'dir' ? '<dir>' : n.data.toString();
    }
    return out;
  }
}
