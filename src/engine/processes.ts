// processes.ts — the host side of guest processes (native/include/abi.h, "Guest-to-host
// calls: processes"; docs/processes.md). A guest process is one VM. When an exec's VM rings
// with FB_ST_CALL instead of answering, the exec becomes a *process group*: this module
// answers every call of every VM in it — fork (a live fork of the caller: derive + fork),
// pipes that cross processes, wait, kill, shared memory and the futexes on it, and WAIT,
// the one call that blocks — until the first process (the exec's own VM) answers, exits,
// crashes or reaches the exec's deadline. Then every other process is ended and the group's
// output, in the order the host received it, becomes the exec's.
//
// Each VM runs on its own native worker between calls; this module only ever holds a VM
// that is stopped at a call. Nothing here trusts the guest: every length and id in a call
// is checked, and a VM that breaks the protocol ends (as a crash of that process only).

import type { NativeResponse as Response } from '../vmm/binding.js';
import type { RunRequest } from '../vmm/vmm.js';
import {
  FB_REQ_ANSWER, FB_ST_CALL, FB_ST_DONE, FB_ST_EXIT, FB_EXIT_SIGNALED, FB_OUT_TRUNCATED, FB_ERR_TRUNCATED,
  FB_CALL_FORK, FB_CALL_PIPE_NEW, FB_CALL_PIPE_REF, FB_CALL_PIPE_READ, FB_CALL_PIPE_WRITE, FB_CALL_POLL, FB_CALL_WAIT,
  FB_CALL_WAITPID, FB_CALL_KILL, FB_CALL_SHM_SHARE, FB_CALL_SHM_UNSHARE, FB_CALL_FUTEX_WAKE, FB_WAIT_CHILD,
  FB_CALL_HDR, FB_ANSWER_HDR, FB_POLL_ENT, FB_FUTEX_ENT, FB_PID_STRIDE, FB_MB_REQ_SIZE,
} from '../vmm/abi.js';

// Linux values the protocol uses.
const EPERM = 1, ESRCH = 3, EINTR = 4, EAGAIN = 11, ECHILD = 10, EINVAL = 22, EPIPE = 32, EDEADLK = 35, ENOSYS = 38, ETIMEDOUT = 110;
const POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 16, POLLNVAL = 32;
const SIGKILL = 9, SIGSEGV = 11, SIGCHLD = 17;
const WNOWAIT = 0x01000000;
const ROOT_PID = 2;

/** FORKBOX_TRACE_CALLS=1: one stderr line per call (debugging). */
const TRACE = process.env.FORKBOX_TRACE_CALLS === '1';
const CALL_NAMES: Record<number, string> = { 1: 'FORK', 2: 'PIPE_NEW', 3: 'PIPE_REF', 4: 'PIPE_READ', 5: 'PIPE_WRITE', 6: 'POLL',
  7: 'WAIT', 8: 'WAITPID', 9: 'KILL', 10: 'SHM_SHARE', 11: 'SHM_UNSHARE', 12: 'FUTEX_WAKE' };

/** Pipe capacity (Linux's default) and the size up to which a write is all or nothing. */
export const PIPE_CAPACITY = 65536;
const PIPE_BUF = 4096;
/** Most data one READ answer carries (the REQ area less the answer header). */
const MAX_READ = FB_MB_REQ_SIZE - FB_ANSWER_HDR;

/** A VM of the group, as this module needs it (src/vmm/vmm.ts Vm; a fake in unit tests). */
export interface GroupVm {
  run(req: RunRequest): Promise<Response>;
  derive(root: GroupSnapshot): Promise<GroupSnapshot>;
  kick(): void;
  close(gone?: () => void): void;
  share(gpa: number, len: number, shm: GroupShm, off: number, copyIn: boolean): void;
  unshare(gpa: number, len: number): void;
}
export interface GroupSnapshot { fork(pool?: unknown): Promise<GroupVm>; close(): void }
export interface GroupShm { readonly size: number; grow(size: number): void; read32(off: number): number; close(): void }

/** What the group needs from the engine. */
export interface GroupHost {
  /** The template the exec runs on: every process fork derives against it. */
  root: GroupSnapshot;
  pool?: unknown;
  /** Budget share of one more process; throws when the memory budget cannot hold it. */
  charge(): { release(): void };
  createShm(size: number): GroupShm;
  /** Processes a group may hold at once (the first included); 0: this host serves no processes (fork → ENOSYS). */
  maxProcesses: number;
  memLimit: number;
  /** Called for what is worth a log line (a broken protocol, a deadlock). */
  note?(event: string, fields: Record<string, unknown>): void;
}

export interface GroupLimits { deadline: number; outCap: number; errCap: number }

interface Waiting {
  entries: { pipe: number; end: number; events: number }[];
  futex: { key: number; off: number; expect: number }[];
  child: boolean;
  timer: NodeJS.Timeout | null;
  answer: (ret: number, data?: Buffer) => void;
}

interface Proc {
  pid: number;
  ppid: number;
  vm: GroupVm | null;
  charge: { release(): void } | null;
  /** Open descriptions of each host pipe end this VM holds: pipe id → [read, write]. */
  refs: Map<number, [number, number]>;
  signals: bigint;
  waiting: Waiting | null;
  /** Exited: its wait status (Linux encoding), until its parent reaps it. */
  status: number | null;
  children: Set<number>;
  /** A fork (derive + fork) of it is being made: it is not idle. */
  busy: boolean;
  /** A run of its VM is in progress (a kick would end it; a kick at any other time would end its next run). */
  inRun: boolean;
}

interface Pipe { chunks: Buffer[]; len: number; readers: number; writers: number }

interface Chunk { stream: 1 | 2; data: Buffer }

export interface CallHeader { nr: number; args: bigint[]; data: Buffer }

/** Parses a FB_ST_CALL response's RESULT area; null when it is malformed. */
export function parseCall(result: Buffer): CallHeader | null {
  if (result.length < FB_CALL_HDR) return null;
  const nr = result.readUInt32LE(0);
  const args: bigint[] = [];
  for (let i = 0; i < 6; i++) args.push(result.readBigInt64LE(8 + 8 * i));
  const len = result.readBigUInt64LE(56);
  if (len > BigInt(result.length - FB_CALL_HDR)) return null;
  return { nr, args, data: result.subarray(FB_CALL_HDR, FB_CALL_HDR + Number(len)) };
}

/** Encodes a FB_REQ_ANSWER payload. */
export function encodeAnswer(ret: number, vals: number[] = [], signals = 0n, data?: Buffer): Buffer {
  const b = Buffer.alloc(FB_ANSWER_HDR + (data?.length ?? 0));
  b.writeBigInt64LE(BigInt(ret), 0);
  for (let i = 0; i < 4; i++) b.writeBigInt64LE(BigInt(vals[i] ?? 0), 8 + 8 * i);
  b.writeBigUInt64LE(signals, 40);
  b.writeBigUInt64LE(BigInt(data?.length ?? 0), 48);
  if (data) data.copy(b, FB_ANSWER_HDR);
  return b;
}

/** A response for a process the host ended (or that failed to run): no output, no answer. */
const ended = (base: Response, outcome: string, outcomeCode: number, detail = base.detail): Response =>
  ({ ...base, outcome, outcomeCode, status: 0, detail, result: Buffer.alloc(0), stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) });

const small = (v: bigint | undefined, lo: bigint, hi: bigint): number | null => (v === undefined || v < lo || v > hi ? null : Number(v));
const sigBit = (sig: number): bigint => 1n << BigInt(sig - 1);

/**
 * One exec's processes. `run(first)` takes the response in which the exec's VM made its
 * first call and resolves with the exec's final response: the first process's own (DONE,
 * EXIT, a crash, a timeout) with the whole group's output in it.
 */
export class ProcessGroup {
  #host: GroupHost;
  #limits: GroupLimits;
  #procs = new Map<number, Proc>();
  #pipes = new Map<number, Pipe>();
  #shms = new Map<number, GroupShm>();
  #nextPipe = 1;
  #nextShm = 1;
  #nextPid = FB_PID_STRIDE;
  #out: Chunk[] = [];
  #outBytes = 0;
  #errBytes = 0;
  #flags = 0;
  #ended = false;
  #running = 0;
  #deadlineTimer: NodeJS.Timeout | null = null;
  /** Processes ever started (the first included), for the exec's log line. */
  started = 1;

  constructor(host: GroupHost, limits: GroupLimits) {
    this.#host = host;
    this.#limits = limits;
  }

  /** Ends every process now (a cancelled exec): the first's drive loop returns "killed". */
  cancel(): void {
    for (const q of this.#procs.values()) this.#terminate(q, SIGKILL);
  }

  async run(vm: GroupVm, first: Response): Promise<Response> {
    const root: Proc = this.#newProc(ROOT_PID, 1, vm, null);
    this.#deadlineTimer = setTimeout(() => this.#expire(), Math.max(1, this.#limits.deadline - Date.now()));
    try {
      const last = await this.#drive(root, first);
      return this.#final(last);
    } finally {
      this.#end();
    }
  }

  // ---- each process: run, take its output, answer its calls, until it ends ----

  async #drive(p: Proc, resp: Response): Promise<Response> {
    for (;;) {
      this.#take(resp);
      if (!p.vm) return resp;   // ended (killed) while it ran: its status is set
      if (resp.outcome !== 'ok' || resp.status !== FB_ST_CALL) {
        this.#exited(p, resp);
        return resp;
      }
      const call = parseCall(resp.result);
      let answer: Buffer;
      if (!call) {
        this.#host.note?.('process.protocol', { pid: p.pid, why: 'malformed call' });
        answer = encodeAnswer(-EINVAL);
      } else {
        answer = await this.#serve(p, call);
        if (TRACE) process.stderr.write(`forkbox: call pid ${p.pid} ${CALL_NAMES[call.nr] ?? call.nr}(${call.args.slice(0, 4).join(', ')}) data ${call.nr === FB_CALL_POLL || call.nr === FB_CALL_WAIT ? call.data.toString('hex') : call.data.length} -> ${answer.readBigInt64LE(0)} ${answer.subarray(FB_ANSWER_HDR, FB_ANSWER_HDR + 32).toString('hex')}\n`);
      }
      if (!p.vm || this.#ended) {
        // killed (or the group ended) while its call was out
        const killed = ended(resp, 'killed', 9);
        if (p.status === null) this.#exited(p, killed);
        return killed;
      }
      const timeoutMs = this.#limits.deadline - Date.now();
      if (timeoutMs <= 0) {
        const t = ended(resp, 'timeout', 8);
        this.#exited(p, t);
        return t;
      }
      this.#running++;
      p.inRun = true;
      try {
        resp = await p.vm.run({ kind: FB_REQ_ANSWER, payload: answer, outCap: Math.max(1, this.#limits.outCap - this.#outBytes),
          errCap: Math.max(1, this.#limits.errCap - this.#errBytes), memLimit: this.#host.memLimit, timeoutMs });
      } catch (e) {
        resp = ended(resp, 'crash-internal', 6, String((e as Error).message ?? e));
      } finally {
        this.#running--;
        p.inRun = false;
      }
    }
  }

  /** Output in arrival order, under the exec's caps. */
  #take(r: Response): void {
    this.#flags |= r.outFlags & (FB_OUT_TRUNCATED | FB_ERR_TRUNCATED);
    const put = (stream: 1 | 2, data: Buffer): void => {
      if (!data.length) return;
      const used = stream === 1 ? this.#outBytes : this.#errBytes;
      const cap = stream === 1 ? this.#limits.outCap : this.#limits.errCap;
      const keep = Math.max(0, Math.min(data.length, cap - used));
      if (keep < data.length) this.#flags |= stream === 1 ? FB_OUT_TRUNCATED : FB_ERR_TRUNCATED;
      if (!keep) return;
      this.#out.push({ stream, data: Buffer.from(data.subarray(0, keep)) });
      if (stream === 1) this.#outBytes += keep; else this.#errBytes += keep;
    };
    put(1, r.stdout);
    put(2, r.stderr);
  }

  #final(last: Response): Response {
    const pick = (s: 1 | 2): Buffer => Buffer.concat(this.#out.filter((c) => c.stream === s).map((c) => c.data));
    return { ...last, stdout: pick(1), stderr: pick(2), outFlags: (last.outFlags & ~(FB_OUT_TRUNCATED | FB_ERR_TRUNCATED)) | this.#flags };
  }

  // ---- the calls ----

  async #serve(p: Proc, c: CallHeader): Promise<Buffer> {
    const sig = (): bigint => { const s = p.signals; p.signals = 0n; return s; };
    const ans = (ret: number, vals: number[] = [], data?: Buffer): Buffer => encodeAnswer(ret, vals, sig(), data);
    switch (c.nr) {
      case FB_CALL_FORK: return this.#fork(p, ans);
      case FB_CALL_PIPE_NEW: {
        const r = small(c.args[0], 0n, 1n << 20n), w = small(c.args[1], 0n, 1n << 20n);
        if (r === null || w === null || c.data.length > PIPE_CAPACITY) return ans(-EINVAL);
        const id = this.#nextPipe++;
        const pipe: Pipe = { chunks: c.data.length ? [Buffer.from(c.data)] : [], len: c.data.length, readers: 0, writers: 0 };
        this.#pipes.set(id, pipe);
        this.#ref(p, id, 0, r);
        this.#ref(p, id, 1, w);
        return ans(id);
      }
      case FB_CALL_PIPE_REF: {
        const id = small(c.args[0], 1n, 1n << 31n), end = small(c.args[1], 0n, 1n), d = small(c.args[2], -1n, 1n);
        if (id === null || end === null || d === null || d === 0 || !this.#pipes.has(id)) return ans(-EINVAL);
        const held = p.refs.get(id)?.[end] ?? 0;
        if (d < 0 && held === 0) return ans(-EINVAL);
        this.#ref(p, id, end, d);
        this.#changed();
        return ans(0);
      }
      case FB_CALL_PIPE_READ: {
        const id = small(c.args[0], 1n, 1n << 31n), max = small(c.args[1], 0n, BigInt(MAX_READ));
        const pipe = id === null ? undefined : this.#pipes.get(id);
        if (!pipe || max === null || !this.#holds(p, id!, 0)) return ans(-EINVAL);
        if (pipe.len === 0) return ans(pipe.writers === 0 ? 0 : -EAGAIN);
        const data = this.#drain(pipe, max);
        this.#changed();
        return ans(data.length, [], data);
      }
      case FB_CALL_PIPE_WRITE: {
        const id = small(c.args[0], 1n, 1n << 31n);
        const pipe = id === null ? undefined : this.#pipes.get(id);
        if (!pipe || !this.#holds(p, id!, 1)) return ans(-EINVAL);
        if (pipe.readers === 0) return ans(-EPIPE);
        const room = PIPE_CAPACITY - pipe.len, n = c.data.length;
        if (n === 0) return ans(0);
        if (room === 0 || (n <= PIPE_BUF && room < n)) return ans(-EAGAIN);
        const take = Math.min(n, room);
        pipe.chunks.push(Buffer.from(c.data.subarray(0, take)));
        pipe.len += take;
        this.#changed();
        return ans(take);
      }
      case FB_CALL_POLL: {
        const n = small(c.args[0], 0n, 4096n);
        if (n === null || c.data.length < n * FB_POLL_ENT) return ans(-EINVAL);
        const ents = this.#pollEntries(c.data, n);
        const rev = this.#revents(p, ents);
        return ans(rev.ready, [], rev.buf);
      }
      case FB_CALL_WAIT: return this.#wait(p, c, sig);
      case FB_CALL_WAITPID: {
        const pid = small(c.args[0], -(1n << 31n), 1n << 31n), opts = small(c.args[1], 0n, 0xffffffffn);
        if (pid === null || opts === null) return ans(-EINVAL);
        const r = this.#reap(p, pid, (opts & WNOWAIT) !== 0);
        return r ? ans(r.pid, [r.status]) : ans([...p.children].some((k) => pid <= 0 || k === pid) ? 0 : -ECHILD);
      }
      case FB_CALL_KILL: {
        const pid = small(c.args[0], -(1n << 31n), 1n << 31n), s = small(c.args[1], 0n, 64n);
        if (pid === null || s === null) return ans(-EINVAL);
        return ans(this.#kill(p, pid, s));
      }
      case FB_CALL_SHM_SHARE: return ans(this.#share(p, c.args));
      case FB_CALL_SHM_UNSHARE: {
        const gpa = small(c.args[0], 0n, 1n << 47n), len = small(c.args[1], 1n, 1n << 40n);
        if (gpa === null || len === null) return ans(-EINVAL);
        try { p.vm!.unshare(gpa, len); } catch { return ans(-EINVAL); }
        return ans(0);
      }
      case FB_CALL_FUTEX_WAKE: {
        const key = small(c.args[0], 1n, 1n << 31n), off = small(c.args[1], 0n, 1n << 40n), n = small(c.args[2], 0n, 1n << 31n);
        const bits = small(c.args[3], 0n, 0xffffffffn);
        if (key === null || off === null || n === null || bits === null) return ans(-EINVAL);
        return ans(this.#futexWake(p, key, off, n));
      }
      default:
        return ans(-ENOSYS);
    }
  }

  async #fork(p: Proc, ans: (ret: number, vals?: number[]) => Buffer): Promise<Buffer> {
    if (this.#host.maxProcesses === 0) return ans(-ENOSYS);
    const live = [...this.#procs.values()].filter((q) => q.vm).length;
    if (live >= this.#host.maxProcesses) return ans(-EAGAIN);
    let charge: { release(): void };
    try { charge = this.#host.charge(); } catch { return ans(-EAGAIN); }
    p.busy = true;
    let vm: GroupVm;
    try {
      const snap = await p.vm!.derive(this.#host.root);
      try { vm = await snap.fork(this.#host.pool); } finally { snap.close(); }
    } catch (e) {
      charge.release();
      this.#host.note?.('process.fork_failed', { pid: p.pid, err: String((e as Error).message ?? e) });
      return ans(-EAGAIN);
    } finally {
      p.busy = false;
    }
    if (this.#ended || !p.vm) { vm.close(); charge.release(); return ans(-EAGAIN); }
    const pid = this.#nextPid;
    this.#nextPid += FB_PID_STRIDE;
    const child = this.#newProc(pid, p.pid, vm, charge);
    for (const [id, [r, w]] of p.refs) this.#ref(child, id, 0, r), this.#ref(child, id, 1, w);
    p.children.add(pid);
    this.started++;
    // the child's first run answers its copy of the call: 0, its pid, its parent's
    this.#running++;
    child.inRun = true;
    const timeoutMs = Math.max(1, this.#limits.deadline - Date.now());
    vm.run({ kind: FB_REQ_ANSWER, payload: encodeAnswer(0, [pid, p.pid]), outCap: Math.max(1, this.#limits.outCap - this.#outBytes),
      errCap: Math.max(1, this.#limits.errCap - this.#errBytes), memLimit: this.#host.memLimit, timeoutMs })
      .catch((e: unknown) => ({ outcome: 'crash-internal', outcomeCode: 6, status: 0, exitCode: 0, outFlags: 0, detail: String(e),
        result: Buffer.alloc(0), stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) }) as unknown as Response)
      .then((r) => { this.#running--; child.inRun = false; return this.#drive(child, r); })
      .catch((e: unknown) => this.#host.note?.('process.failed', { pid, err: String(e) }));
    return ans(pid);
  }

  #share(p: Proc, a: bigint[]): number {
    const gpa = small(a[0], 0n, 1n << 47n), len = small(a[1], 1n, 1n << 36n), key = small(a[2], 0n, 1n << 31n), off = small(a[3], 0n, 1n << 36n);
    if (gpa === null || len === null || key === null || off === null || gpa % 4096 || len % 4096 || off % 4096) return -EINVAL;
    try {
      if (key === 0) {
        if (off !== 0) return -EINVAL;
        const shm = this.#host.createShm(len);
        const k = this.#nextShm++;
        this.#shms.set(k, shm);
        p.vm!.share(gpa, len, shm, 0, true);
        return k;
      }
      const shm = this.#shms.get(key);
      if (!shm) return -EINVAL;
      if (off + len > shm.size) shm.grow(off + len);
      p.vm!.share(gpa, len, shm, off, false);
      return key;
    } catch (e) {
      this.#host.note?.('process.share_failed', { pid: p.pid, err: String((e as Error).message ?? e) });
      return -EINVAL;
    }
  }

  #wait(p: Proc, c: CallHeader, sig: () => bigint): Promise<Buffer> | Buffer {
    const timeout = c.args[0] ?? -1n;
    const np = small(c.args[1], 0n, 4096n), nf = small(c.args[2], 0n, 4096n), flags = small(c.args[3], 0n, 0xffffffffn);
    if (np === null || nf === null || flags === null || c.data.length < np * FB_POLL_ENT + nf * FB_FUTEX_ENT)
      return encodeAnswer(-EINVAL, [], sig());
    const entries = this.#pollEntries(c.data, np);
    const futex: Waiting['futex'] = [];
    for (let i = 0; i < nf; i++) {
      const o = np * FB_POLL_ENT + i * FB_FUTEX_ENT;
      futex.push({ key: Number(c.data.readBigUInt64LE(o) & 0x7fffffffn), off: c.data.readUInt32LE(o + 8), expect: c.data.readUInt32LE(o + 12) });
    }
    return new Promise<Buffer>((resolve) => {
      const w: Waiting = { entries, futex, child: (flags & FB_WAIT_CHILD) !== 0, timer: null,
        answer: (ret, data) => {
          if (p.waiting !== w) return;
          p.waiting = null;
          if (w.timer) clearTimeout(w.timer);
          resolve(encodeAnswer(ret, [], sig(), data ?? this.#revents(p, entries).buf));
        } };
      p.waiting = w;
      if (timeout >= 0n) {
        const ms = Number(timeout / 1000000n);
        w.timer = setTimeout(() => w.answer(-ETIMEDOUT), Math.min(ms, 2 ** 31 - 1));
      }
      this.#check(p);
      if (p.waiting === w) this.#deadlock();
    });
  }

  /** Answers p's WAIT when something it waits for is ready. */
  #check(p: Proc): void {
    const w = p.waiting;
    if (!w) return;
    if (p.signals) return w.answer(0);
    if (w.child && [...p.children].some((k) => this.#procs.get(k)?.status !== null)) return w.answer(0);
    if (w.child && p.children.size === 0) return w.answer(0);
    const rev = this.#revents(p, w.entries);
    if (rev.ready) return w.answer(0, rev.buf);
    for (const f of w.futex) {
      const shm = this.#shms.get(f.key);
      if (!shm || f.off + 4 > shm.size) return w.answer(0);
      if (shm.read32(f.off) !== f.expect) return w.answer(0);
    }
  }

  /** Something changed (a pipe, a process, a signal): look at every waiting process. */
  #changed(): void {
    for (const q of this.#procs.values()) if (q.waiting) this.#check(q);
  }

  /** Every live process waits with no timeout and none runs: nothing can ever change. */
  #deadlock(): void {
    const live = [...this.#procs.values()].filter((q) => q.vm);
    if (!live.length || !this.#procs.get(ROOT_PID)?.vm || this.#running > 0 || live.some((q) => q.busy || !q.waiting || q.waiting.timer)) return;
    this.#host.note?.('process.deadlock', { processes: live.length });
    const root = this.#procs.get(ROOT_PID);
    const msg = Buffer.from(`forkbox: deadlock: ${live.length} process(es), all blocked with no timeout\n`);
    this.#take({ stdout: Buffer.alloc(0), stderr: msg, outFlags: 0 } as unknown as Response);
    (root?.waiting ? root : live[0])?.waiting?.answer(-EDEADLK);
  }

  #pollEntries(data: Buffer, n: number): Waiting['entries'] {
    const out: Waiting['entries'] = [];
    for (let i = 0; i < n; i++) {
      const o = i * FB_POLL_ENT;
      out.push({ pipe: data.readUInt32LE(o), end: data.readUInt16LE(o + 4), events: data.readUInt16LE(o + 6) });
    }
    return out;
  }

  #revents(p: Proc, ents: Waiting['entries']): { ready: number; buf: Buffer } {
    const buf = Buffer.alloc(2 * ents.length);
    let ready = 0;
    ents.forEach((e, i) => {
      const pipe = this.#pipes.get(e.pipe);
      let r = 0;
      if (!pipe || e.end > 1 || !this.#holds(p, e.pipe, e.end)) r = POLLNVAL;
      else if (e.end === 0) {
        if (pipe.len > 0) r |= POLLIN & e.events;
        if (pipe.writers === 0) r |= POLLHUP;
      } else {
        if (pipe.readers === 0) r |= POLLERR;
        else if (PIPE_CAPACITY - pipe.len >= PIPE_BUF) r |= POLLOUT & e.events;
      }
      buf.writeUInt16LE(r, 2 * i);
      if (r) ready++;
    });
    return { ready, buf };
  }

  #holds(p: Proc, id: number, end: number): boolean {
    return (p.refs.get(id)?.[end] ?? 0) > 0;
  }

  #ref(p: Proc, id: number, end: number, d: number): void {
    if (!d) return;
    const pipe = this.#pipes.get(id);
    if (!pipe) return;
    const held = p.refs.get(id) ?? [0, 0];
    const was = held[end] ?? 0;
    held[end] = Math.max(0, was + d);
    const delta = held[end] - was;
    if (end === 0) pipe.readers += delta; else pipe.writers += delta;
    if (held[0] || held[1]) p.refs.set(id, held); else p.refs.delete(id);
    if (pipe.readers === 0 && pipe.writers === 0 && ![...this.#procs.values()].some((q) => q.refs.has(id))) this.#pipes.delete(id);
  }

  #drain(pipe: Pipe, max: number): Buffer {
    const parts: Buffer[] = [];
    let left = Math.min(max, pipe.len);
    while (left > 0) {
      const c = pipe.chunks[0]!;
      if (c.length <= left) { parts.push(c); pipe.chunks.shift(); left -= c.length; pipe.len -= c.length; }
      else { parts.push(c.subarray(0, left)); pipe.chunks[0] = c.subarray(left); pipe.len -= left; left = 0; }
    }
    return Buffer.concat(parts);
  }

  #reap(p: Proc, pid: number, keep: boolean): { pid: number; status: number } | null {
    for (const k of p.children) {
      if (pid > 0 && k !== pid) continue;
      const q = this.#procs.get(k);
      if (!q || q.status === null) continue;
      if (!keep) { p.children.delete(k); this.#procs.delete(k); }
      return { pid: k, status: q.status };
    }
    return null;
  }

  #kill(p: Proc, pid: number, sig: number): number {
    const targets = pid > 0 ? [this.#procs.get(pid)].filter((q): q is Proc => !!q && q.vm !== null)
      : [...this.#procs.values()].filter((q) => q !== p && q.vm !== null);
    if (pid > 0 && !targets.length) return this.#procs.has(pid) ? 0 : -ESRCH; // a zombie takes signals and ignores them
    if (sig === 0) return 0;
    if (pid > 0 && pid === p.pid) return -EPERM; // the runtime serves its own signals; a call for them is a bug
    for (const q of targets) {
      if (sig === SIGKILL) this.#terminate(q, SIGKILL);
      else { q.signals |= sigBit(sig); this.#check(q); }
    }
    return 0;
  }

  #futexWake(p: Proc, key: number, off: number, n: number): number {
    let woken = 0;
    for (const q of this.#procs.values()) {
      if (woken >= n) break;
      if (q === p || !q.waiting) continue;
      if (q.waiting.futex.some((f) => f.key === key && f.off === off)) { q.waiting.answer(0); woken++; }
    }
    return woken;
  }

  // ---- life and death ----

  #newProc(pid: number, ppid: number, vm: GroupVm, charge: { release(): void } | null): Proc {
    const p: Proc = { pid, ppid, vm, charge, refs: new Map(), signals: 0n, waiting: null, status: null, children: new Set(), busy: false, inRun: false };
    this.#procs.set(pid, p);
    return p;
  }

  /** A process ended: its wait status, its pipe ends dropped, its VM released, its parent told. */
  #exited(p: Proc, r: Response): void {
    if (p.status !== null) return;
    let status: number;
    if (r.outcome === 'ok' && r.status === FB_ST_EXIT) {
      status = r.outFlags & FB_EXIT_SIGNALED ? (r.exitCode - 128) & 0x7f : (r.exitCode & 0xff) << 8;
    } else if (r.outcome === 'ok' && r.status === FB_ST_DONE) status = 0;
    else if (r.outcome === 'ok') status = SIGSEGV;
    else status = r.outcome === 'killed' || r.outcome === 'timeout' ? SIGKILL : SIGSEGV;
    this.#release(p, status);
  }

  #terminate(p: Proc, sig: number): void {
    if (p.status !== null || !p.vm) return;
    this.#release(p, sig);
  }

  #release(p: Proc, status: number): void {
    p.status = status;
    p.waiting?.answer(-EINTR); // its drive loop sees the VM gone and ends
    for (const [id, [r, w]] of [...p.refs]) { this.#ref(p, id, 0, -r); this.#ref(p, id, 1, -w); }
    const vm = p.vm;
    p.vm = null;
    if (vm) {
      if (p.inRun) vm.kick(); // ends the run in progress (a VM stopped at a call or done needs none)
      // the first process's VM is the exec's: its caller closes (or recycles) it
      if (p.pid !== ROOT_PID) { const charge = p.charge; vm.close(() => charge?.release()); }
    } else p.charge?.release();
    // orphans are nobody's to wait for
    for (const k of p.children) {
      const q = this.#procs.get(k);
      if (q) { q.ppid = 1; if (q.status !== null) this.#procs.delete(k); }
    }
    p.children.clear();
    const parent = this.#procs.get(p.ppid);
    if (parent && parent.vm) parent.signals |= sigBit(SIGCHLD);
    else if (p.pid !== ROOT_PID) this.#procs.delete(p.pid);
    this.#changed();
    if (!this.#ended) this.#deadlock();
  }

  #expire(): void {
    // the exec's deadline: every process ends; the first's own run times out on its worker
    for (const q of this.#procs.values()) if (q.pid !== ROOT_PID) this.#terminate(q, SIGKILL);
    const root = this.#procs.get(ROOT_PID);
    if (root?.waiting) root.waiting.answer(-ETIMEDOUT);
  }

  #end(): void {
    this.#ended = true;
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    for (const q of this.#procs.values()) if (q.pid !== ROOT_PID) this.#terminate(q, SIGKILL);
    for (const s of this.#shms.values()) s.close();
    this.#shms.clear();
    this.#pipes.clear();
  }
}

/**
 * The exec (or session exec) whose VM answered `first` with a call: serves its process
 * group to the end. `onCancel` receives the group's cancel (an aborted exec ends them all).
 */
export async function serveProcesses(vm: GroupVm, first: Response, host: GroupHost, limits: GroupLimits,
  onCancel?: (cancel: () => void) => void): Promise<{ response: Response; processes: number }> {
  const g = new ProcessGroup(host, limits);
  onCancel?.(() => g.cancel());
  const response = await g.run(vm, first);
  return { response, processes: g.started };
}

export const isCall = (r: Response): boolean => r.outcome === 'ok' && r.status === FB_ST_CALL;

/** A host that serves the calls but starts no processes: fork answers ENOSYS. */
export function noProcesses(memLimit: number): GroupHost {
  return {
    root: { fork: () => Promise.reject(new Error('no processes')), close: () => {} },
    charge: () => { throw new Error('no processes'); },
    createShm: () => { throw new Error('no processes'); },
    maxProcesses: 0,
    memLimit,
  };
}
