// sandbox.ts — what a user holds: one fork that runs execs until close().
// The one-shot exec path forks and destroys in a single native hand-off; a
// Sandbox keeps its fork so later execs see earlier state (sessions).
// After a timeout, crash or cancel the fork is dead and the sandbox closes.
// Memory hooks let the engine charge the fork its worst case while an exec
// runs and its measured private pages while it is idle.
import { shuttingDown } from '../lib/errors.js';
import { FB_REQ_EXEC, FB_ST_DONE } from '../vmm/abi.js';
import type { Vm } from '../vmm/vmm.js';
import { decodeResponse, encodePayload, newExecId, validateExec, vmmCap, VMM_OK } from './decode.js';
import type { ExecRequest, ExecResult } from './types.js';

/** How the engine charges a kept fork: the worst case before each run, measured pages when idle. */
export interface SandboxMemory {
  beforeRun(): void;
  idle(vm: Vm): void;
}

export class Sandbox {
  #vm: Vm | null;
  #busy = false;
  #onClose: () => void;
  #onGone: () => void;
  #mem: SandboxMemory | null;
  readonly defaults: { stdoutCap: number; stderrCap: number; memLimit: number };

  /** `onClose` runs at close(); `onGone` once the fork's memory is released. */
  constructor(vm: Vm, defaults: { stdoutCap: number; stderrCap: number; memLimit: number }, onClose: () => void,
    onGone: () => void = () => {}, mem: SandboxMemory | null = null) {
    this.#vm = vm;
    this.defaults = defaults;
    this.#onClose = onClose;
    this.#onGone = onGone;
    this.#mem = mem;
    mem?.idle(vm);
  }

  get closed(): boolean {
    return this.#vm === null;
  }

  async exec(req: ExecRequest, signal?: AbortSignal): Promise<ExecResult> {
    const vm = this.#vm;
    if (!vm) throw shuttingDown();
    if (this.#busy) throw new Error('sandbox is already running an exec');
    const v = validateExec(req, this.defaults);
    const payload = encodePayload(req);
    const id = newExecId();
    let cancelled = false;
    const onAbort = (): void => { cancelled = true; vm.kick(); };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    this.#mem?.beforeRun();   // MemoryBudgetExceeded: this exec is refused, the sandbox stays
    this.#busy = true;
    const t0 = performance.now();
    try {
      const r = await vm.run({ kind: FB_REQ_EXEC, payload, outCap: vmmCap(v.stdoutCap), errCap: vmmCap(v.stderrCap),
        memLimit: this.defaults.memLimit, timeoutMs: v.timeoutMs });
      const res = decodeResponse(id, r, { forkMs: 0, execMs: r.runNs / 1e6, totalMs: performance.now() - t0 },
        { timeoutSeconds: req.timeoutSeconds, cancelled, stdoutCap: v.stdoutCap, stderrCap: v.stderrCap });
      if (r.outcomeCode !== VMM_OK || res.outcome !== 'exited' || r.status !== FB_ST_DONE) this.close();
      else this.#mem?.idle(vm);
      return res;
    } finally {
      this.#busy = false;
      signal?.removeEventListener('abort', onAbort);
    }
  }

  close(): void {
    if (!this.#vm) return;
    this.#vm.close(this.#onGone);
    this.#vm = null;
    this.#onClose();
  }
}
