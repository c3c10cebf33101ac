// fake-vmm.ts — a stand-in VMM for unit tests of the engine's session layer
// where /dev/kvm is missing: FakeSnapshot/FakeVm keep a guest's state as plain
// JS (a namespace, files, a change log, written pages) and answer the runner
// protocol and the runtime's file requests in their wire formats. It is not a
// VM and isolates nothing; it never stands in for a KVM test.
//
// Code is a line-per-command script: `set NAME VALUE`, `get NAME` (the
// result), `print TEXT`, `write PATH TEXT`, `rm PATH`, `touch N` (N pages
// written), `sleep MS`, `spin` (until the deadline: outcome timeout),
// `crash` (a fault), `exit N` (the program ends the process).
import {
  FB_CHG_CREATED, FB_CHG_DELETED, FB_CHG_MODIFIED, FB_FILE_APPEND, FB_FILE_RESP_SIZE, FB_FILE_TRUNC, FB_FT_DIR,
  FB_FT_REG, FB_REQ_CHANGES, FB_REQ_EXEC, FB_REQ_FILE_LIST, FB_REQ_FILE_MKDIR, FB_REQ_FILE_READ, FB_REQ_FILE_REMOVE,
  FB_REQ_FILE_STAT, FB_REQ_FILE_WRITE, FB_REQ_FS_QUOTA, FB_ST_DONE, FB_ST_EXIT,
} from '../vmm/abi.js';
import type { Pool, Response, RunRequest } from '../vmm/vmm.js';
import type { SessionSnapshot, SessionVm } from './session.js';

const PAGE = 4096;

interface GuestState {
  ns: Map<string, string>;
  files: Map<string, Buffer>;
  dirs: Set<string>;
  /** path → change since the last exec began */
  changes: Map<string, 'created' | 'modified' | 'deleted'>;
  pages: number;
}

const clone = (g: GuestState): GuestState => ({
  ns: new Map(g.ns), files: new Map([...g.files].map(([k, v]) => [k, Buffer.from(v)])), dirs: new Set(g.dirs),
  changes: new Map(g.changes), pages: g.pages,
});

export class FakeSnapshot implements SessionSnapshot {
  readonly #state: GuestState;
  readonly pages: number;
  /** Every VM forked from any FakeSnapshot that is not closed yet (tests check it returns to 0). */
  static live = 0;
  closed = false;
  constructor(state?: GuestState, pages = 0) {
    this.#state = state ?? { ns: new Map(), files: new Map(), dirs: new Set(['/', '/tmp']), changes: new Map(), pages: 0 };
    this.pages = pages;
  }
  async fork(_pool?: Pool | null): Promise<SessionVm> {
    if (this.closed) throw new Error('snapshot is closed');
    return new FakeVm(clone(this.#state));
  }
  close(): void { this.closed = true; }
  async write(): Promise<void> { throw new Error('a fake snapshot is not written to disk (use an in-memory store)'); }
  /** @internal */ get state(): GuestState { return clone(this.#state); }
}

function response(over: Partial<Response>): Response {
  return { outcome: 'ok', outcomeCode: 0, status: FB_ST_DONE, exitCode: 0, outFlags: 0, result: Buffer.alloc(0),
    stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), faultVector: 0, faultError: 0, faultRip: 0, faultCr2: 0, exitReason: 0,
    ioPort: 0, mmioAddr: 0, detail: '', exits: 1, runNs: 1000, arenaUsed: 0, arenaPeak: 0, ...over };
}

function fileResp(f: { err?: number; flags?: number; size?: number; length?: number; cursor?: number; mode?: number }): Buffer {
  const b = Buffer.alloc(FB_FILE_RESP_SIZE);
  b.writeInt32LE(f.err ?? 0, 0); b.writeUInt32LE(f.flags ?? 0, 4);
  b.writeBigUInt64LE(BigInt(f.size ?? 0), 8); b.writeBigUInt64LE(BigInt(f.length ?? 0), 16);
  b.writeBigUInt64LE(BigInt(f.cursor ?? 0), 24); b.writeUInt32LE(f.mode ?? 0, 32);
  b.writeBigInt64LE(1700000000n, 40);
  return b;
}

function entry(name: string, type: number, change: number, size: number): Buffer {
  const nb = Buffer.from(name);
  const b = Buffer.alloc((32 + nb.length + 7) & ~7);
  b.writeUInt32LE(b.length, 0); b.writeUInt16LE(nb.length, 4); b[6] = type; b[7] = change;
  b.writeUInt32LE(type === FB_FT_DIR ? 0o40755 : 0o100644, 8); b.writeBigUInt64LE(BigInt(size), 16);
  b.writeBigInt64LE(1700000000n, 24);
  nb.copy(b, 32);
  return b;
}

export class FakeVm implements SessionVm {
  #g: GuestState;
  #closed = false;
  #kicked = false;
  #dead = false;
  constructor(g: GuestState) {
    this.#g = g;
    FakeSnapshot.live++;
  }

  kick(): void { this.#kicked = true; }
  close(gone?: () => void): void {
    if (!this.#closed) { this.#closed = true; FakeSnapshot.live--; }
    gone?.();
  }
  privateBytes(): number { return this.#g.pages * PAGE; }
  async derive(): Promise<SessionSnapshot> {
    const pages = this.#g.pages;
    this.#g.pages = 0;   // re-based: its pages are the child's now
    return new FakeSnapshot(clone({ ...this.#g, pages: 0 }), pages);
  }

  #change(path: string, kind: 'created' | 'modified' | 'deleted'): void {
    const prev = this.#g.changes.get(path);
    if (prev === 'created' && kind === 'deleted') this.#g.changes.delete(path);
    else if (prev === 'created' && kind === 'modified') return;
    else if (prev === 'deleted' && kind === 'created') this.#g.changes.set(path, 'modified');
    else this.#g.changes.set(path, kind);
  }

  async run(req: RunRequest): Promise<Response> {
    if (this.#closed || this.#dead) throw new Error('vm is closed');
    this.#kicked = false;
    if (req.kind === FB_REQ_EXEC) return this.#exec(req);
    return this.#file(req);
  }

  async #exec(req: RunRequest): Promise<Response> {
    const body = JSON.parse((req.payload as Buffer).toString('utf8')) as { code: string; session?: boolean };
    if (!body.session) this.#g.ns.clear();
    this.#g.changes.clear();
    let out = '', result: string | undefined;
    for (const line of body.code.split('\n')) {
      const [cmd, a = '', ...rest] = line.trim().split(' ');
      const b = rest.join(' ');
      switch (cmd) {
        case 'set': this.#g.ns.set(a, b); this.#g.pages++; break;
        case 'get': result = this.#g.ns.has(a) ? JSON.stringify(this.#g.ns.get(a)) : undefined; break;
        case 'print': out += `${[a, b].filter(Boolean).join(' ')}\n`; break;
        case 'write': this.#change(a, this.#g.files.has(a) ? 'modified' : 'created'); this.#g.files.set(a, Buffer.from(b)); break;
        case 'rm': if (this.#g.files.delete(a)) this.#change(a, 'deleted'); break;
        case 'touch': this.#g.pages += Number(a); break;
        case 'sleep': await new Promise((r) => setTimeout(r, Number(a))); break;
        case 'spin': {
          const end = Date.now() + (req.timeoutMs ?? 1000);
          while (Date.now() < end && !this.#kicked) await new Promise((r) => setTimeout(r, 5));
          this.#dead = true;
          return response(this.#kicked ? { outcome: 'killed', outcomeCode: 9 } : { outcome: 'timeout', outcomeCode: 8 });
        }
        case 'crash': this.#dead = true; return response({ outcome: 'crash_fault', outcomeCode: 1, detail: 'fake fault' });
        case 'exit': this.#dead = true; return response({ status: FB_ST_EXIT, exitCode: Number(a) });
        default: break;
      }
      if (this.#kicked) { this.#dead = true; return response({ outcome: 'killed', outcomeCode: 9 }); }
    }
    const ans = JSON.stringify({ exit_code: 0, ...(result !== undefined ? { result } : {}) });
    return response({ result: Buffer.from(ans), stdout: Buffer.from(out), arenaPeak: this.#g.pages * PAGE });
  }

  #file(req: RunRequest): Response {
    const p = req.payload as Buffer;
    const flags = p.readUInt32LE(0), off = Number(p.readBigUInt64LE(8)), pl = p.readUInt32LE(24);
    const path = p.toString('utf8', 56, 56 + pl), data = p.subarray(56 + pl);
    const g = this.#g;
    let r: Parameters<typeof fileResp>[0] = {};
    let stdout: Buffer = Buffer.alloc(0);
    const cur = g.files.get(path);
    switch (req.kind) {
      case FB_REQ_FILE_WRITE: {
        let f = flags & FB_FILE_TRUNC ? Buffer.alloc(0) : cur ?? Buffer.alloc(0);
        const at = flags & FB_FILE_APPEND ? f.length : off;
        if (at + data.length > f.length) f = Buffer.concat([f, Buffer.alloc(at + data.length - f.length)]);
        data.copy(f, at);
        this.#change(path, cur ? 'modified' : 'created');
        g.files.set(path, f);
        g.pages += Math.ceil(data.length / PAGE);
        r = { size: f.length };
        break;
      }
      case FB_REQ_FILE_READ:
        if (!cur) r = { err: 2 };
        else { stdout = cur.subarray(off); r = { size: cur.length, length: stdout.length }; }
        break;
      case FB_REQ_FILE_STAT:
        if (cur) r = { size: cur.length, mode: 0o100644 };
        else if (g.dirs.has(path)) r = { mode: 0o40755 };
        else r = { err: 2 };
        break;
      case FB_REQ_FILE_MKDIR: g.dirs.add(path); break;
      case FB_REQ_FILE_REMOVE:
        if (cur) { g.files.delete(path); this.#change(path, 'deleted'); } else r = { err: 2 };
        break;
      case FB_REQ_FILE_LIST: {
        const dir = path.endsWith('/') ? path : path + '/';
        const names = [...g.files.keys()].filter((k) => k.startsWith(dir) && !k.slice(dir.length).includes('/')).sort();
        stdout = Buffer.concat(names.map((n) => entry(n.slice(dir.length), FB_FT_REG, 0, g.files.get(n)!.length)));
        r = { length: names.length };
        break;
      }
      case FB_REQ_CHANGES: {
        const kind = { created: FB_CHG_CREATED, modified: FB_CHG_MODIFIED, deleted: FB_CHG_DELETED };
        const es = [...g.changes].map(([n, k]) => entry(n, FB_FT_REG, kind[k], g.files.get(n)?.length ?? 0));
        stdout = Buffer.concat(es);
        r = { length: es.length };
        break;
      }
      case FB_REQ_FS_QUOTA: break;
      default: r = { err: 38 };
    }
    return response({ result: fileResp(r), stdout });
  }
}
