// abi.ts — the few constants of native/include/abi.h that TypeScript needs
// (request kinds, response statuses, output flags, mailbox area sizes).
// Keep in step with abi.h; test/unit/engine-abi.test.ts checks them against it.

export const FB_ABI_VERSION = 3;

export const FB_REQ_NONE = 0;
export const FB_REQ_EXEC = 1;
export const FB_REQ_ECHO = 2;
export const FB_REQ_ANSWER = 3;

export const FB_ST_READY = 1;
export const FB_ST_DONE = 2;
export const FB_ST_EXIT = 3;
export const FB_ST_ERROR = 4;
export const FB_ST_CALL = 5;

export const FB_OUT_TRUNCATED = 0x1;
export const FB_ERR_TRUNCATED = 0x2;
export const FB_RESULT_TRUNCATED = 0x4;
export const FB_EXIT_SIGNALED = 0x8;

/** Guest-to-host calls (abi.h, "Guest-to-host calls: processes"); served by src/engine/processes.ts. */
export const FB_PID_STRIDE = 1000;
export const FB_CALL_FORK = 1;
export const FB_CALL_PIPE_NEW = 2;
export const FB_CALL_PIPE_REF = 3;
export const FB_CALL_PIPE_READ = 4;
export const FB_CALL_PIPE_WRITE = 5;
export const FB_CALL_POLL = 6;
export const FB_CALL_WAIT = 7;
export const FB_CALL_WAITPID = 8;
export const FB_CALL_KILL = 9;
export const FB_CALL_SHM_SHARE = 10;
export const FB_CALL_SHM_UNSHARE = 11;
export const FB_CALL_FUTEX_WAKE = 12;
export const FB_FORK_VFORK = 0x1;
export const FB_WAIT_CHILD = 0x1;
/** struct fb_call / fb_answer headers (64 bytes each), fb_poll_ent (8), fb_futex_ent (16). */
export const FB_CALL_HDR = 64;
export const FB_ANSWER_HDR = 64;
export const FB_POLL_ENT = 8;
export const FB_FUTEX_ENT = 16;

export const FB_MB_RESULT_SIZE = 0xff000;
export const FB_MB_REQ_SIZE = 0x800000;
export const FB_MB_OUT_SIZE = 0x1000000;
export const FB_MB_ERR_SIZE = 0x800000;
export const FB_ENTROPY_SIZE = 64;
export const FB_MAILBOX_SIZE = 0x4000000;
export const FB_BOOT_ARGS_MAX = 0x1000 - 128;

export const FB_PAGE_SIZE = 0x1000;
/** First guest address of the arena: shared memory ranges start at or above it. */
export const FB_ARENA_BASE = 0x400000;
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

// ---- runtime-served file requests (abi.h "Runtime-served file requests") ----
export const FB_REQ_RT_FIRST = 16;
export const FB_REQ_FILE_WRITE = 16;
export const FB_REQ_FILE_READ = 17;
export const FB_REQ_FILE_STAT = 18;
export const FB_REQ_FILE_LIST = 19;
export const FB_REQ_FILE_MKDIR = 20;
export const FB_REQ_FILE_REMOVE = 21;
export const FB_REQ_FILE_RENAME = 22;
export const FB_REQ_CHANGES = 23;
export const FB_REQ_FS_QUOTA = 24;
export const FB_REQ_RT_LAST = 31;

export const FB_FILE_TRUNC = 0x1;
export const FB_FILE_APPEND = 0x2;
export const FB_FILE_EXCL = 0x4;
export const FB_FILE_PARENTS = 0x8;
export const FB_FILE_RECURSIVE = 0x10;
export const FB_FILE_NOFOLLOW = 0x20;
export const FB_FILE_RESET = 0x40;
export const FB_FILE_MORE = 0x1;
export const FB_FILE_OVERFLOW = 0x2;

export const FB_FT_REG = 1;
export const FB_FT_DIR = 2;
export const FB_FT_LNK = 3;
export const FB_FT_CHR = 4;
export const FB_FT_OTHER = 5;
export const FB_CHG_CREATED = 1;
export const FB_CHG_MODIFIED = 2;
export const FB_CHG_DELETED = 3;

/** sizeof(struct fb_file_req), (struct fb_file_resp), (struct fb_file_ent) */
export const FB_FILE_REQ_SIZE = 56;
export const FB_FILE_RESP_SIZE = 80;
export const FB_FILE_ENT_SIZE = 32;
