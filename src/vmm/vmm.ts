// vmm.ts — typed wrapper over the native VMM addon: Snapshot, Vm and Pool with
// async methods, probe() and the bare-floor benchmark. Owns validation and
// defaults; the addon takes already-checked primitives. Native errors carry
// `code` (errno name, e.g. "ENOENT") and `op` (the failing call).
import { constants as fsConstants, accessSync, existsSync, readFileSync } from 'node:fs';
import { loadAddon, type NativeDiff, type NativeForkRun, type NativeRecycle, type NativePool, type NativeRequest, type NativeResponse,
  type NativeShm, type NativeSnapshot, type NativeStats, type NativeVm, type Addon } from './binding.js';
import { FB_ARENA_BASE, FB_ENTROPY_SIZE, FB_HUGE_PAGE_SIZE, FB_MB_ERR_SIZE, FB_MB_OUT_SIZE, FB_MB_REQ_SIZE,
  FB_PAGE_SIZE, FB_RAM_MAX, FB_RAM_MIN, FB_REQ_ECHO, FB_ST_CALL } from './abi.js';

export type { NativeResponse as Response, NativeStats as VmmStats, NativeRecycle as RecycleStats, NativeDiff as SnapshotDiff } from './binding.js';

export interface ProbeResult {
  available: boolean;
  reason?: string;
  info?: ReturnType<Addon['probe']>;
}

/** Can this process run VMs? Never throws. */
export function probe(): ProbeResult {
  if (!existsSync('/dev/kvm')) return { available: false, reason: 'no /dev/kvm on this machine' };
  try {
    accessSync('/dev/kvm', fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    return { available: false, reason: 'no permission to open /dev/kvm (run as root or join the kvm group)' };
  }
  let addon: Addon;
  try {
    addon = loadAddon();
  } catch (e) {
    return { available: false, reason: (e as Error).message };
  }
  try {
    return { available: true, info: addon.probe() };
  } catch (e) {
    return { available: false, reason: `KVM probe failed: ${(e as Error).message}` };
  }
}

/** True when the kvm_pvm module is loaded (informational). */
export function isPvmHost(): boolean {
  try {
    return readFileSync('/proc/modules', 'utf8').split('\n').some((l) => l.startsWith('kvm_pvm '));
  } catch {
    return false;
  }
}

let workersSet = false;
/** Number of native vCPU worker threads; call before the first VM is created. */
export function setWorkers(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new RangeError(`workers must be 1..1024, got ${n}`);
  loadAddon().init(n);
  workersSet = true;
}
/** True once the worker count is fixed (set explicitly, or started with the default). */
export const workersConfigured = (): boolean => workersSet || loadAddon().stats().workers > 0;

export function checkRamSize(ramSize: number): void {
  if (!Number.isSafeInteger(ramSize) || ramSize < FB_RAM_MIN || ramSize > FB_RAM_MAX || ramSize % FB_HUGE_PAGE_SIZE !== 0)
    throw new RangeError(`ram size must be a multiple of 2 MiB in [64 MiB, 2 GiB], got ${ramSize}`);
}

/** Bare floor: create VM + slot + vCPU + CPUID, then tear down, `n` times; durations
 *  in ns of the whole (`total`) and of the creation part alone (`create`). */
export function benchFloor(ramSize: number, n: number): { total: number[]; create: number[] } {
  checkRamSize(ramSize);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new RangeError('n must be 1..1e6');
  const ns = [...loadAddon().benchFloor(ramSize, n)];
  return { total: ns.slice(0, n), create: ns.slice(n) };
}

export function stats(): NativeStats {
  return loadAddon().stats();
}

export interface RunRequest {
  kind: number;
  payload?: Buffer | string;
  /** Bytes of stdout/stderr the guest may keep (0 = the whole area). */
  outCap?: number;
  errCap?: number;
  /** Arena bytes the program may use (0 = all RAM). */
  memLimit?: number;
  /** Deadline in milliseconds, > 0 (required: every run is finite). */
  timeoutMs: number;
  /** FB_ENTROPY_SIZE bytes; default: fresh randomness from the host. */
  entropy?: Buffer;
}

/** Longest deadline the VMM layer accepts (a week); the engine's own cap is lower. */
export const MAX_RUN_TIMEOUT_MS = 7 * 24 * 3600e3;

/** A run's deadline in ns: required, finite, > 0, rounded up (never down to 0 = refused). */
export function deadlineNs(timeoutMs: number): number {
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_RUN_TIMEOUT_MS)
    throw new RangeError(`timeoutMs must be in (0, ${MAX_RUN_TIMEOUT_MS}]: every run has a deadline`);
  return Math.max(1, Math.ceil(timeoutMs * 1e6));
}

function toNativeRequest(r: RunRequest): NativeRequest {
  const payload = r.payload === undefined ? Buffer.alloc(0) : typeof r.payload === 'string' ? Buffer.from(r.payload, 'utf8') : r.payload;
  if (payload.length > FB_MB_REQ_SIZE) throw new RangeError(`request payload is ${payload.length} bytes (max ${FB_MB_REQ_SIZE})`);
  const cap = (v: number | undefined, max: number, name: string): number => {
    const x = v ?? 0;
    if (!Number.isSafeInteger(x) || x < 0 || x > max) throw new RangeError(`${name} must be 0..${max}`);
    return x;
  };
  if (r.entropy && r.entropy.length !== FB_ENTROPY_SIZE) throw new RangeError(`entropy must be ${FB_ENTROPY_SIZE} bytes`);
  if (!Number.isInteger(r.kind) || r.kind < 0 || r.kind > 0xffffffff) throw new RangeError('bad request kind');
  return {
    kind: r.kind,
    payload,
    outCap: cap(r.outCap, FB_MB_OUT_SIZE, 'outCap'),
    errCap: cap(r.errCap, FB_MB_ERR_SIZE, 'errCap'),
    memLimit: cap(r.memLimit, FB_RAM_MAX, 'memLimit'),
    timeoutNs: deadlineNs(r.timeoutMs),
    ...(r.entropy ? { entropy: r.entropy } : {}),
  };
}

function promisify<T>(fn: (cb: (err: Error | null, v?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
}

/** A shared range's guest part: page-aligned, non-empty, inside [FB_ARENA_BASE, FB_RAM_MAX) (the VM checks its RAM size). */
function checkRange(gpa: number, len: number, op: string): void {
  if (!isPageMultiple(gpa) || !isPageMultiple(len) || len === 0)
    throw new RangeError(`${op}: gpa and len must be multiples of ${FB_PAGE_SIZE}, len > 0 (got ${gpa}, ${len})`);
  if (gpa < FB_ARENA_BASE || gpa + len > FB_RAM_MAX)
    throw new RangeError(`${op}: [${gpa}, ${gpa + len}) must lie inside the arena (from ${FB_ARENA_BASE}, below the VM's RAM size)`);
}

const isPageMultiple = (v: number): boolean => Number.isSafeInteger(v) && v >= 0 && v % FB_PAGE_SIZE === 0;

/**
 * A host shared memory object: pages that are the same memory in every VM whose
 * range maps it (Vm.share), readable by the host (the futex value check). Its size
 * is a multiple of 4 KiB, at most 2 GiB; it grows and never shrinks. Closing drops
 * this handle's reference; VMs (and child snapshots) that map it keep their own.
 */
export class Shm {
  #h: NativeShm | null;
  private constructor(h: NativeShm) {
    this.#h = h;
  }
  static create(size: number): Shm {
    if (!isPageMultiple(size) || size === 0 || size > FB_RAM_MAX)
      throw new RangeError(`shared memory size must be a multiple of ${FB_PAGE_SIZE} in [${FB_PAGE_SIZE}, ${FB_RAM_MAX}], got ${size}`);
    return new Shm(loadAddon().shmCreate(size));
  }
  get closed(): boolean {
    return this.#h === null;
  }
  /** @internal */
  get native(): NativeShm {
    if (!this.#h) throw new Error('shared memory object is closed');
    return this.#h;
  }
  get size(): number {
    return loadAddon().shmSize(this.native);
  }
  /** Grows to `size` bytes (a multiple of 4 KiB, not below the current size). */
  grow(size: number): void {
    const h = this.native;
    if (!isPageMultiple(size) || size > FB_RAM_MAX)
      throw new RangeError(`shared memory size must be a multiple of ${FB_PAGE_SIZE}, at most ${FB_RAM_MAX}, got ${size}`);
    const cur = loadAddon().shmSize(h);
    if (size < cur) throw new RangeError(`shared memory objects never shrink: ${size} < ${cur}`);
    loadAddon().shmGrow(h, size);
  }
  /** The unsigned 32-bit word at byte `off` (4-aligned, inside the object). */
  read32(off: number): number {
    const h = this.native;
    if (!Number.isSafeInteger(off) || off < 0 || off % 4 !== 0 || off + 4 > loadAddon().shmSize(h))
      throw new RangeError(`read32 offset must be 4-aligned and inside the object, got ${off}`);
    return loadAddon().shmRead32(h, off);
  }
  close(): void {
    if (!this.#h) return;
    loadAddon().close(this.#h);
    this.#h = null;
  }
}

/** A running VM: booted from an ELF, or forked from a snapshot. */
export class Vm {
  #h: NativeVm | null;
  constructor(h: NativeVm) {
    this.#h = h;
  }
  get closed(): boolean {
    return this.#h === null;
  }
  #handle(): NativeVm {
    if (!this.#h) throw new Error('vm is closed');
    return this.#h;
  }

  /** Boots a static guest ELF (not started: call start()). `testMmioHole`
   *  (tests only) maps the slot-less page whose access is an MMIO exit;
   *  production guests never have it, an access there is a #PF. */
  static boot(cfg: { ramSize: number; guestElf: string; imagePath?: string; args?: Buffer; testMmioHole?: boolean }): Vm {
    checkRamSize(cfg.ramSize);
    const args = cfg.args ?? Buffer.alloc(0);
    return new Vm(loadAddon().bootVm({ ramSize: cfg.ramSize, guestElf: cfg.guestElf, args,
      ...(cfg.imagePath ? { imagePath: cfg.imagePath } : {}), ...(cfg.testMmioHole ? { testMmioHole: true } : {}) }));
  }

  /** First run of a booted VM: to the guest's first doorbell (READY expected). */
  start(timeoutMs: number): Promise<NativeResponse> {
    const h = this.#handle();
    return promisify((cb) => loadAddon().start(h, deadlineNs(timeoutMs), cb));
  }

  run(req: RunRequest): Promise<NativeResponse> {
    const h = this.#handle();
    const nreq = toNativeRequest(req);
    return promisify((cb) => loadAddon().run(h, nreq, cb));
  }

  echo(payload: Buffer | string, timeoutMs = 5000): Promise<NativeResponse> {
    return this.run({ kind: FB_REQ_ECHO, payload, timeoutMs });
  }

  /** Host memory this VM holds privately (copy-on-write copies of its RAM + its mailbox pages),
   *  bytes. About 1 ms per GiB of RAM; call between runs (a kept sandbox), not per exec. */
  privateBytes(): number {
    return loadAddon().privateBytes(this.#handle());
  }

  /**
   * Puts this fork, whose last run answered DONE, back into the state of a fresh fork of its
   * (root) snapshot: its private RAM pages get the memory file's bytes back, its mailbox is
   * zeroed, its vCPU state is the snapshot's. Runs on the VM's worker after queued jobs.
   * Rejects (and the VM is dead: close it) for anything else: a fork of a child, a booted VM,
   * a crash, timeout, kill or exit, a written system area.
   */
  recycle(): Promise<NativeRecycle> {
    const h = this.#handle();
    return promisify((cb) => loadAddon().recycle(h, cb));
  }

  /** KVM's counters of this VM's vCPU since it was created: exits (also those the kernel handles
   *  without the VMM) and page faults fixed in the kernel (first touches). Call between runs. */
  kvmStats(): { exits: number; pfFixed: number; pfTaken: number } {
    return loadAddon().kvmStats(this.#handle());
  }

  /** RAM pages that differ from the snapshot's memory file and mailbox pages that are not zero
   *  (reads all of the VM's RAM: for isolation tests, never on a serving path). */
  diffSnapshot(): Promise<NativeDiff> {
    const h = this.#handle();
    return promisify((cb) => loadAddon().diffSnapshot(h, cb));
  }

  /**
   * Makes the guest range [gpa, gpa+len) of this fork the memory of `shm` at byte `off`:
   * the same pages in every VM that maps it, from the guest's next access. With `copyIn`
   * the range's current bytes are written into the object first. Overlapped parts of
   * earlier ranges are replaced. Synchronous, on the JS thread, and only while the VM is
   * not running (it is stopped at a call or between runs): throws EBUSY while a job of it
   * runs. gpa, len and off are multiples of 4 KiB, len > 0, the range inside the arena
   * [FB_ARENA_BASE, ramSize) and inside the object. A derive carries the ranges to every
   * fork of the child; a VM that shared is never recycled. Booted VMs refuse it.
   */
  share(gpa: number, len: number, shm: Shm, off: number, copyIn: boolean): void {
    const h = this.#handle();
    checkRange(gpa, len, 'share');
    if (!isPageMultiple(off)) throw new RangeError(`share: offset must be a multiple of ${FB_PAGE_SIZE}, got ${off}`);
    if (!(shm instanceof Shm)) throw new TypeError('share: shm must be a Shm');
    if (off + len > shm.size) throw new RangeError(`share: [${off}, ${off + len}) is past the object's ${shm.size} bytes`);
    if (typeof copyIn !== 'boolean') throw new TypeError('share: copyIn must be a boolean');
    loadAddon().share(h, gpa, len, shm.native, off, copyIn);
  }

  /** The range becomes private zero memory again (its shared parts drop their objects).
   *  Same rules as share(): synchronous, only while the VM is not running. */
  unshare(gpa: number, len: number): void {
    const h = this.#handle();
    checkRange(gpa, len, 'unshare');
    loadAddon().unshare(h, gpa, len);
  }

  /** Ends the current (or next) run with outcome "killed". No-op once closed. */
  kick(): void {
    if (this.#h) loadAddon().kick(this.#h);
  }

  saveSnapshot(memPath: string, statePath: string): Promise<void> {
    const h = this.#handle();
    return promisify((cb) => loadAddon().saveSnapshot(h, memPath, statePath, cb));
  }

  /**
   * Captures this VM (stopped between runs) as a child snapshot of the root
   * template it descends from: its vCPU state and only the pages it changed.
   * The VM is re-based onto the child, so it and every fork of the child share
   * those pages copy-on-write. `root` is the template's Snapshot.
   */
  /** Writes what derive() then Snapshot.write() would, straight from this VM's RAM: no
   *  in-memory copy and no re-base (for a pause, after which the VM is closed). */
  saveChild(memPath: string, statePath: string): Promise<void> {
    const h = this.#handle();
    return promisify((cb) => loadAddon().saveChild(h, memPath, statePath, cb));
  }

  derive(root: Snapshot): Promise<Snapshot> {
    const h = this.#handle();
    return promisify<NativeSnapshot>((cb) => loadAddon().deriveSnapshot(h, cb))
      .then((n) => Snapshot.fromNative(n, root));
  }

  /** Destroys the VM on its worker (after any run in flight). Idempotent.
   *  `gone` is called once the VM's memory is released (at once if already closed). */
  close(gone?: () => void): void {
    if (!this.#h) { gone?.(); return; }
    loadAddon().close(this.#h, gone);
    this.#h = null;
  }

  /** @internal */
  static fromNative(h: NativeVm): Vm {
    return new Vm(h);
  }
}

/** Pre-created VM shells, refilled by a native thread. */
export class Pool {
  #h: NativePool | null;
  constructor(target: number, maxRamSize: number) {
    if (!Number.isInteger(target) || target < 0 || target > 100_000) throw new RangeError('pool target must be 0..100000');
    checkRamSize(maxRamSize);
    this.#h = loadAddon().poolCreate(target, maxRamSize);
  }
  get native(): NativePool | null {
    return this.#h;
  }
  /** Prepares shells for forks of `snap` (its RAM mapped off the fork path); null unbinds. */
  bind(snap: Snapshot | null): void {
    if (!this.#h) throw new Error('pool is closed');
    loadAddon().poolBind(this.#h, snap ? snap.native : null);
  }
  stats(): { ready: number; target: number; created: number; taken: number; misses: number } {
    if (!this.#h) return { ready: 0, target: 0, created: 0, taken: 0, misses: 0 };
    return loadAddon().poolStats(this.#h);
  }
  close(): void {
    if (!this.#h) return;
    loadAddon().close(this.#h);
    this.#h = null;
  }
}

export interface ForkRunResult {
  response: NativeResponse;
  forkNs: number;
  runNs: number;
}

/** An opened snapshot (memory file + state file), shared by all its forks. */
export class Snapshot {
  #h: NativeSnapshot | null;
  readonly memPath: string;
  readonly statePath: string;
  /** The root template of a child snapshot; null for a root. */
  readonly root: Snapshot | null;
  constructor(memPath: string, statePath: string, native?: NativeSnapshot, root: Snapshot | null = null) {
    this.memPath = memPath;
    this.statePath = statePath;
    this.root = root;
    this.#h = native ?? loadAddon().openSnapshot(memPath, statePath);
  }

  /** @internal A child made in memory by Vm.derive (no files yet). */
  static fromNative(n: NativeSnapshot, root: Snapshot): Snapshot {
    return new Snapshot('', '', n, root.root ?? root);
  }

  /** Opens a child written by write(); it must descend from `root`. */
  static openChild(root: Snapshot, memPath: string, statePath: string): Snapshot {
    return new Snapshot(memPath, statePath, loadAddon().openChildSnapshot(root.native, memPath, statePath), root);
  }

  /** Pages a child holds (0 for a root). */
  get pages(): number {
    return loadAddon().snapshotPages(this.#handle());
  }

  /** Writes a child snapshot: a sparse memory file of its pages and a checksummed state file. */
  write(memPath: string, statePath: string): Promise<void> {
    const h = this.#handle();
    return promisify((cb) => loadAddon().writeSnapshot(h, memPath, statePath, cb));
  }
  #handle(): NativeSnapshot {
    if (!this.#h) throw new Error('snapshot is closed');
    return this.#h;
  }
  get ramSize(): number {
    return loadAddon().snapshotRamSize(this.#handle());
  }
  /** @internal */
  get native(): NativeSnapshot {
    return this.#handle();
  }

  fork(pool?: Pool | null): Promise<Vm> {
    const h = this.#handle();
    return promisify<NativeVm>((cb) => loadAddon().fork(h, pool?.native ?? null, cb)).then((v) => Vm.fromNative(v));
  }

  /**
   * Forks and runs one request in a single hand-off to a worker; the fork is
   * destroyed right after (destroy=true) or returned as `vm`. `kick` ends the
   * run early with outcome "killed" (e.g. on an abort signal). With destroy,
   * `onGone` is called once the fork's memory is released (the answer comes first).
   * A response with status FB_ST_CALL (the guest asks the host) is never torn down:
   * `vm` is returned even with destroy, the caller answers the call with
   * `vm.run({ kind: FB_REQ_ANSWER, ... })` and closes it; `onGone` is then called
   * once that vm's memory is released (after close's own `gone`).
   */
  forkRun(req: RunRequest, opts: { pool?: Pool | null; destroy?: boolean; onGone?: () => void } = {}): {
    done: Promise<ForkRunResult & { vm: Vm | null }>;
    kick: () => void;
  } {
    const h = this.#handle();
    const nreq = toNativeRequest(req);
    const destroy = opts.destroy ?? true;
    const addon = loadAddon();
    let vmh: NativeVm | null = null;
    let finished = false;
    const done = new Promise<ForkRunResult & { vm: Vm | null }>((resolve, reject) => {
      vmh = addon.forkRun(h, opts.pool?.native ?? null, nreq, destroy, (err, v?: NativeForkRun) => {
        finished = true;
        if (err || !v) {
          if (vmh) addon.close(vmh);
          reject(err ?? new Error('forkRun returned nothing'));
          return;
        }
        // A guest that stopped at a call is kept even with destroy: the caller answers it.
        const call = v.response.outcome === 'ok' && v.response.status === FB_ST_CALL;
        if (destroy && !call && vmh) addon.close(vmh);
        resolve({ ...v, vm: (destroy && !call) || !vmh ? null : Vm.fromNative(vmh) });
      }, destroy ? opts.onGone : undefined);
    });
    return { done, kick: () => { if (vmh && !finished) addon.kick(vmh); } };
  }

  close(): void {
    if (!this.#h) return;
    loadAddon().close(this.#h);
    this.#h = null;
  }
}
