// engine-backend.ts — the MCP backend over an engine in this process: run_code
// is engine.exec, the session tools are the engine's SessionEngine methods for
// one owner. An engine without sessions (createSession missing) answers the
// session tools with Unsupported, so run_code still works.
import type { Engine, ExecRequest, ExecResult } from '../engine/types.js';
import type { SessionEngine, SessionExecResult } from '../engine/session-types.js';
import { unsupported } from '../lib/errors.js';
import type { McpBackend, RunOutput } from './backend.js';

export interface EngineBackendOptions {
  /** Output caps applied to every exec (defaults: the engine's). */
  stdoutCap?: number;
  stderrCap?: number;
}

/** True when the engine implements the session contract. */
export function hasSessions(engine: Engine): engine is Engine & SessionEngine {
  return typeof (engine as Partial<SessionEngine>).createSession === 'function';
}

export function toRunOutput(r: ExecResult | SessionExecResult): RunOutput {
  const out: RunOutput = {
    stdout: r.stdout,
    stderr: r.stderr,
    exitCode: r.exitCode,
    outcome: r.outcome,
    stdoutTruncated: r.stdoutTruncated,
    stderrTruncated: r.stderrTruncated,
  };
  if (r.crash !== undefined) out.crash = r.crash;
  const s = r as Partial<SessionExecResult>;
  if (s.result !== undefined) out.result = s.result;
  if (s.sideEffects !== undefined) out.sideEffects = s.sideEffects;
  if (r.results?.length) out.results = r.results;
  if (r.resultsTruncated) out.resultsTruncated = true;
  return out;
}

export function engineBackend(engine: Engine, owner: string, opts: EngineBackendOptions = {}): McpBackend {
  const sessions = (): SessionEngine => {
    if (!hasSessions(engine)) {
      throw unsupported('this forkbox build has no sessions yet; use run_code, which runs code in a fresh sandbox');
    }
    return engine;
  };
  const caps = (req: ExecRequest): ExecRequest => {
    if (opts.stdoutCap !== undefined) req.stdoutCap = opts.stdoutCap;
    if (opts.stderrCap !== undefined) req.stderrCap = opts.stderrCap;
    return req;
  };
  return {
    async runCode(req, signal) {
      const r = await engine.exec(caps({ code: req.code, language: req.language, timeoutSeconds: req.timeoutSeconds,
        ...(req.template !== undefined ? { template: req.template } : {}) }), signal);
      return toRunOutput(r);
    },
    createSession: (req, signal) => sessions().createSession({ owner, ...req }, signal),
    async execSession(id, req, signal) {
      const info = sessions().getSession(owner, id);
      const call = caps({ code: req.code, language: info.language, timeoutSeconds: req.timeoutSeconds });
      const r = await sessions().execSession(owner, id, { ...call, ...(req.discard ? { discard: true } : {}) }, signal);
      return toRunOutput(r);
    },
    async writeFile(id, path, data) {
      await sessions().writeFile(owner, id, path, data, { parents: true });
    },
    readFile: async (id, path) => sessions().readFile(owner, id, path),
    listFiles: async (id, path) => sessions().listFiles(owner, id, path),
    forkSession: async (id, count) => sessions().forkSession(owner, id, count),
    pauseSession: async (id) => sessions().pauseSession(owner, id),
    deleteSession: async (id) => sessions().deleteSession(owner, id),
  };
}
