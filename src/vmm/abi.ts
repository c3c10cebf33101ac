// abi.ts — the few constants of native/include/abi.h that TypeScript needs
// (request kinds, response statuses, output flags, mailbox area sizes).
// Keep in step with abi.h; test/unit/engine-abi.test.ts checks them against it.

export const FB_ABI_VERSION = 1;

export const FB_REQ_NONE = 0;
export const FB_REQ_EXEC = 1;
export const FB_REQ_ECHO = 2;

export const FB_ST_READY = 1;
export const FB_ST_DONE = 2;
export const FB_ST_EXIT = 3;
export const FB_ST_ERROR = 4;

export const FB_OUT_TRUNCATED = 0x1;
export const FB_ERR_TRUNCATED = 0x2;
export const FB_RESULT_TRUNCATED = 0x4;

export const FB_MB_RESULT_SIZE = 0xf000;
export const FB_MB_REQ_SIZE = 0x800000;
export const FB_MB_OUT_SIZE = 0x1000000;
export const FB_MB_ERR_SIZE = 0x800000;
export const FB_ENTROPY_SIZE = 64;
export const FB_MAILBOX_SIZE = 0x4000000;
export const FB_BOOT_ARGS_MAX = 0x1000 - 128;

export const FB_RAM_MIN = 64 * 1024 * 1024;
export const FB_RAM_MAX = 2048 * 1024 * 1024;
export const FB_HUGE_PAGE_SIZE = 0x200000;

/** Builds the boot args blob: argv strings, "", envp strings, "" (NUL-terminated each). */
export function bootArgs(argv: readonly string[], env: readonly string[]): Buffer {
  const parts = [...argv, '', ...env, ''];
  for (const p of parts) if (p.includes('\0')) throw new Error('boot argument contains NUL');
  const buf = Buffer.from(parts.map((p) => p + '\0').join(''), 'utf8');
  if (buf.length > FB_BOOT_ARGS_MAX) throw new Error(`boot args are ${buf.length} bytes (max ${FB_BOOT_ARGS_MAX})`);
  return buf;
}
