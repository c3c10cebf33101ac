// recycle.ts — when a one-shot fork may be recycled (vm.recycle(): its RAM,
// mailbox and vCPU put back, byte for byte, into a fresh fork's state) instead
// of destroyed, and the switch that turns recycling off (FORKBOX_RECYCLE=0,
// e.g. for a benchmark's baseline). Only a clean answer is recycled: a crash,
// timeout, kill, exit_group (os._exit), non-zero exit status or cancelled
// exec ends its fork as before. The pool side is WarmPool.recycle().
import { boolValue } from '../lib/config.js';
import { FB_ST_DONE } from '../vmm/abi.js';
import type { Response } from '../vmm/vmm.js';
import { VMM_OK } from './decode.js';

/** FORKBOX_RECYCLE as a boolean (1/0, true/false, yes/no, on/off); on when unset. */
export function recycleDefault(env: NodeJS.ProcessEnv = process.env): boolean {
  return boolValue('FORKBOX_RECYCLE', env.FORKBOX_RECYCLE, true);
}

/** True when a one-shot fork that gave this answer (`exitCode`: the program's status as decoded
 *  from the runner's result) may serve another exec after a recycle. */
export function recyclable(r: Response, exitCode: number, cancelled: boolean): boolean {
  return !cancelled && r.outcomeCode === VMM_OK && r.status === FB_ST_DONE && exitCode === 0;
}
