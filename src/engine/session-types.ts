// session-types.ts — the shape of sessions, shared by the engine (which keeps
// them), the HTTP server, the CLI, the MCP server and tests. A session is a
// sandbox kept between execs; every call names its owner (the API key id), and
// a session is visible only to its owner. Errors: NotFound (404) for an unknown
// id or another owner's, Conflict (409) for a busy session or a taken name,
// Gone (410) for an expired, poisoned or deleted one.
import type { ExecRequest, ExecResult, Language } from './types.js';

/** The life of a sandbox. One exec at a time: a call while `running` is 409. */
export type SandboxState =
  | 'ready'     // forked, no exec yet
  | 'running'   // an exec or a file call is in progress
  | 'idle'      // between execs, its VM kept
  | 'paused'    // written to disk, no VM; the next call resumes it
  | 'poisoned'  // its VM died (timeout, crash, or the program ended its process: os._exit; sys.exit is an exit code); only delete
  | 'closed';   // deleted or expired

export interface SessionCreate {
  owner: string;
  language: Language;
  /** Template by name (default: the language's own); its base must be the language's. */
  template?: string;
  /** Unique per owner among live sessions; a taken name is 409. */
  name?: string;
  /** Lifetime in seconds from creation (default and max: engine limits). */
  timeoutSeconds?: number;
  /** Seconds without a call after which the session is paused to disk (not deleted). */
  idleTimeoutSeconds?: number;
  /** Environment of every exec in the session (an exec's own env is laid over it). */
  env?: Record<string, string>;
  /** Caller's labels, returned as given (string values, bounded). */
  metadata?: Record<string, string>;
}

export interface SessionInfo {
  id: string;
  name?: string;
  language: Language;
  /** Set when the session runs a template other than the language's own. */
  template?: string;
  state: SandboxState;
  /** ISO 8601 times. */
  createdAt: string;
  lastActiveAt: string;
  expiresAt: string;
  timeoutSeconds: number;
  idleTimeoutSeconds: number;
  metadata: Record<string, string>;
  execs: number;
  /** The session it was forked from, if any. */
  parentId?: string;
  /** Host memory the session holds now: its own pages (0 when paused). */
  memoryBytes: number;
  /** Bytes on disk while paused (0 otherwise). */
  diskBytes: number;
}

export interface FileChange { path: string; size: number }

/** What an exec in a session changed. */
export interface SideEffects {
  filesCreated: FileChange[];
  filesModified: FileChange[];
  filesDeleted: Array<{ path: string }>;
  /** True when the guest's change log overflowed and some paths are missing. */
  filesTruncated: boolean;
  /** Pages of guest memory the exec wrote for the first time since the session's last snapshot. */
  pagesDirtied: number;
  /** Highest guest memory in use during the exec, bytes. */
  peakMemoryBytes: number;
}

export interface SessionExecRequest extends ExecRequest {
  /** Run in a throwaway fork of the session; the session itself is left untouched. */
  discard?: boolean;
}

export interface SessionExecResult extends ExecResult {
  /** repr of the value of a last expression statement, as a notebook shows it. */
  result?: string;
  resultTruncated?: boolean;
  sideEffects: SideEffects;
}

export type FileType = 'file' | 'dir' | 'symlink' | 'device' | 'other';

export interface FileInfo {
  /** Absolute path inside the session. */
  path: string;
  name: string;
  type: FileType;
  size: number;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** ISO 8601. */
  mtime: string;
}

export interface SessionEngine {
  createSession(req: SessionCreate, signal?: AbortSignal): Promise<SessionInfo>;
  listSessions(owner: string): SessionInfo[];
  getSession(owner: string, id: string): SessionInfo;
  deleteSession(owner: string, id: string): Promise<void>;
  execSession(owner: string, id: string, req: SessionExecRequest, signal?: AbortSignal): Promise<SessionExecResult>;
  /** `count` new sessions from the live state (memory and files); they share unchanged pages. */
  forkSession(owner: string, id: string, count: number): Promise<SessionInfo[]>;
  /** Writes what the session changed against its template to disk and frees its VM. */
  pauseSession(owner: string, id: string): Promise<SessionInfo>;
  writeFile(owner: string, id: string, path: string, data: Buffer, opts?: { mode?: number; parents?: boolean }): Promise<FileInfo>;
  readFile(owner: string, id: string, path: string): Promise<Buffer>;
  statFile(owner: string, id: string, path: string): Promise<FileInfo>;
  listFiles(owner: string, id: string, path: string): Promise<FileInfo[]>;
  removeFile(owner: string, id: string, path: string, opts?: { recursive?: boolean }): Promise<void>;
  mkdir(owner: string, id: string, path: string): Promise<FileInfo>;
}
