// binding.ts — loads the native VMM addon (build/Release/forkbox_vmm.node).
// The only importer of the .node file; everything else goes through vmm.ts.
// The declarations below mirror native/binding/addon.c: handles are opaque
// externals, arguments are already-validated primitives.
import { createRequire } from 'node:module';
import { addonPath } from '../lib/paths.js';

/** Opaque native handles (napi_external). */
export type NativeVm = { readonly __brand: 'vm' };
export type NativeSnapshot = { readonly __brand: 'snapshot' };
export type NativePool = { readonly __brand: 'pool' };
export type NativeShm = { readonly __brand: 'shm' };
export type NativeHandle = NativeVm | NativeSnapshot | NativePool | NativeShm;

export interface NativeProbe {
  kvmApiVersion: number;
  vcpuMmapSize: number;
  tscKhz: number;
  capImmediateExit: boolean;
  capReadonlyMem: boolean;
  capXsave2: boolean;
  capXcrs: boolean;
  isPvm: boolean;
}

export interface NativeRequest {
  kind: number;
  payload: Buffer;
  outCap: number;
  errCap: number;
  memLimit: number;
  timeoutNs: number;
  entropy?: Buffer;
}

export interface NativeResponse {
  outcome: string;        // vmm_outcome_name(): "ok", "timeout", ...
  outcomeCode: number;    // enum vmm_outcome
  status: number;         // FB_ST_* when outcome is ok
  exitCode: number;
  outFlags: number;
  result: Buffer;
  stdout: Buffer;
  stderr: Buffer;
  faultVector: number;
  faultError: number;
  faultRip: number;
  faultCr2: number;
  exitReason: number;
  ioPort: number;
  mmioAddr: number;
  detail: string;
  exits: number;
  runNs: number;
  /** As the guest reports them (informational, never a bound): arena bytes in use, and the most since the exec began. */
  arenaUsed: number;
  arenaPeak: number;
}

export interface NativeForkRun {
  response: NativeResponse;
  forkNs: number;
  runNs: number;
}

export interface NativeStats {
  vmsLive: number; vmsCreated: number; vmsDestroyed: number; forks: number; boots: number;
  runs: number; exits: number; doorbells: number; crashes: number; timeouts: number; kicks: number; recycles: number;
  handlesLive: number; workers: number; pendingJobs: number;
}

/** What a recycle reset: private RAM pages found, restored in place or dropped, mailbox pages zeroed. */
export interface NativeRecycle { ramPages: number; restored: number; dropped: number; mailboxPages: number; ns: number }
/** A vm against its snapshot: RAM pages that differ from the memory file, mailbox pages not all zero. */
export interface NativeDiff { ramPagesDiffering: number; mailboxPagesNonZero: number }

export type Callback<T> = (err: (Error & { code?: string; op?: string }) | null, value?: T) => void;

export interface Addon {
  /** Sets the number of native worker threads; only before the first fork/boot. */
  init(workers: number): void;
  probe(): NativeProbe;
  /** 2n ns: [0,n) create + teardown, [n,2n) the creation part alone. */
  benchFloor(ramSize: number, n: number): Float64Array;
  bootVm(cfg: { ramSize: number; guestElf: string; imagePath?: string; args: Buffer; testMmioHole?: boolean }): NativeVm;
  start(vm: NativeVm, timeoutNs: number, cb: Callback<NativeResponse>): void;
  openSnapshot(memPath: string, statePath: string): NativeSnapshot;
  snapshotRamSize(snap: NativeSnapshot): number;
  poolCreate(target: number, maxRam: number): NativePool;
  /** Binds the pool to a snapshot (null unbinds): its shells get that RAM mapped ahead of forks. */
  poolBind(pool: NativePool, snap: NativeSnapshot | null): void;
  poolStats(pool: NativePool): { ready: number; target: number; created: number; taken: number; misses: number };
  fork(snap: NativeSnapshot, pool: NativePool | null, cb: Callback<NativeVm>): void;
  run(vm: NativeVm, req: NativeRequest, cb: Callback<NativeResponse>): void;
  /** Forks, runs one request and, when `destroy` is set, destroys the fork on its worker.
   *  Returns the vm handle at once so the caller can kick it while it runs. */
  forkRun(snap: NativeSnapshot, pool: NativePool | null, req: NativeRequest, destroy: boolean,
    cb: Callback<NativeForkRun>, gone?: () => void): NativeVm;
  kick(vm: NativeVm): void;
  privateBytes(vm: NativeVm): number;
  /** Puts a fork whose last run answered DONE back into a fresh fork's state; on error the vm is dead. */
  recycle(vm: NativeVm, cb: Callback<NativeRecycle>): void;
  /** KVM's counters of the vm's vCPU since its creation (exits, page faults fixed/taken in the kernel). */
  kvmStats(vm: NativeVm): { exits: number; pfFixed: number; pfTaken: number };
  /** Compares the vm with its snapshot (reads all of its RAM: tests only). */
  diffSnapshot(vm: NativeVm, cb: Callback<NativeDiff>): void;
  saveSnapshot(vm: NativeVm, memPath: string, statePath: string, cb: Callback<void>): void;
  /** A live fork (stopped at a doorbell) as a child snapshot; the vm is re-based onto it. */
  deriveSnapshot(vm: NativeVm, cb: Callback<NativeSnapshot>): void;
  /** Writes the child a derive would give, straight from the vm's RAM (for a pause). */
  saveChild(vm: NativeVm, memPath: string, statePath: string, cb: Callback<void>): void;
  /** Writes a child snapshot (its pages only) and its state file. */
  writeSnapshot(snap: NativeSnapshot, memPath: string, statePath: string, cb: Callback<void>): void;
  openChildSnapshot(root: NativeSnapshot, memPath: string, statePath: string): NativeSnapshot;
  /** Pages a child holds (0 for a root). */
  snapshotPages(snap: NativeSnapshot): number;
  /** A host shared memory object of `size` bytes (a multiple of 4 KiB); grows, never shrinks. */
  shmCreate(size: number): NativeShm;
  shmGrow(shm: NativeShm, size: number): void;
  /** The unsigned 32-bit word at byte `off` (4-aligned). */
  shmRead32(shm: NativeShm, off: number): number;
  shmSize(shm: NativeShm): number;
  /** Guest range [gpa, gpa+len) of the vm becomes the object's [off, off+len); between the vm's jobs. */
  share(vm: NativeVm, gpa: number, len: number, shm: NativeShm, off: number, copyIn: boolean): void;
  /** The range becomes private zero memory again. */
  unshare(vm: NativeVm, gpa: number, len: number): void;
  /** For a vm, `gone` is called once its memory is released. */
  close(handle: NativeHandle, gone?: () => void): void;
  stats(): NativeStats;
}

let cached: Addon | undefined;
let loadError: Error | undefined;

/** Loads the addon once; throws a clear error when it was not built. */
export function loadAddon(): Addon {
  if (cached) return cached;
  if (loadError) throw loadError;
  try {
    const require = createRequire(import.meta.url);
    cached = require(addonPath) as Addon;
    return cached;
  } catch (e) {
    const code = (e as { code?: string }).code;
    loadError = code === 'MODULE_NOT_FOUND'
      ? new Error('native addon not built: run npm install', { cause: e })
      : new Error(`native addon failed to load: ${(e as Error).message}`, { cause: e });
    throw loadError;
  }
}
