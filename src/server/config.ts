// config.ts — the server's settings: one table of options, each settable by a
// flag (`--port 9000`) or an environment variable (FORKBOX_PORT=9000); a flag
// wins over the environment, which wins over the default. The same table
// prints `forkbox serve --help` and is documented in docs/api.md.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError, boolValue, intValue, numberValue, optionalString, stringValue, type Source } from '../lib/config.js';
import { MAX_TIMEOUT_SECONDS } from '../engine/decode.js';

export interface ServerConfig {
  host: string;
  port: number;
  apiKeysFile?: string;
  /** Tokens per second per key; 0 turns rate limiting off. */
  rateLimit: number;
  rateBurst: number;
  maxConcurrency: number;
  maxQueue: number;
  queueTimeoutMs: number;
  bodyLimitBytes: number;
  maxBatch: number;
  batchParallelism: number;
  maxTimeoutSeconds: number;
  shutdownGraceMs: number;
  metricsAuth: boolean;
  logCode: boolean;
  /** Log guest-written text (full crash detail) too; off by default. */
  logOutput: boolean;
  recycle: boolean;
  /** Per API key (or client address with auth off): executions running at once, and waiting. */
  maxRunningPerKey: number;
  maxQueuedPerKey: number;
  /** Byte budgets: finished results not yet sent (JSON size), request bodies held, one batch's output. */
  resultBudgetBytes: number;
  bodyBudgetBytes: number;
  maxBatchOutputBytes: number;
  /** Connections and their timeouts. */
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Extra Host names accepted while auth is off (besides loopback and `host`). */
  allowedHosts: string[];
  /** Sessions: live sessions per key (0 = no server cap), lifetime and idle timeout (default/max, seconds), largest file/tar transfer. */
  maxSessionsPerKey: number;
  sessionTimeoutSeconds: number;
  maxSessionTimeoutSeconds: number;
  sessionIdleTimeoutSeconds: number;
  maxSessionIdleTimeoutSeconds: number;
  maxForkCount: number;
  transferLimitBytes: number;
  // Engine options (undefined: the engine's default).
  memLimitMb?: number;
  poolSize?: number;
  warmForks?: number;
  /** Warm forks per template, "NAME=N" entries. */
  templateWarmForks: string[];
  workers?: number;
  stdoutCapBytes?: number;
  stderrCapBytes?: number;
}

type Kind = 'string' | 'int' | 'number' | 'bool' | 'list';
interface Option {
  key: keyof ServerConfig;
  flag: string;
  env: string;
  kind: Kind;
  help: string;
  def?: () => string | number | boolean | string[];
  min?: number;
  max?: number;
  /** A list item's shape and its name in errors (default: a host name). */
  item?: { re: RegExp; what: string };
}

const MiB = 1024 * 1024;

/** Every server option. Order is the order of `--help` and of the docs. */
export const OPTIONS: readonly Option[] = [
  { key: 'host', flag: 'host', env: 'FORKBOX_HOST', kind: 'string', def: () => '127.0.0.1', help: 'address to bind (loopback unless told otherwise)' },
  { key: 'port', flag: 'port', env: 'FORKBOX_PORT', kind: 'int', def: () => 8080, min: 0, max: 65535, help: 'TCP port (0 = any free port)' },
  { key: 'apiKeysFile', flag: 'api-keys-file', env: 'FORKBOX_API_KEYS_FILE', kind: 'string', help: 'file of API keys, one per line (`key` or `id:key`, # comments); unset = auth OFF' },
  { key: 'rateLimit', flag: 'rate-limit', env: 'FORKBOX_RATE_LIMIT', kind: 'number', def: () => 50, min: 0, max: 1e6, help: 'executions per second per key (token bucket refill); 0 = no rate limit' },
  { key: 'rateBurst', flag: 'rate-burst', env: 'FORKBOX_RATE_BURST', kind: 'int', def: () => 100, min: 1, max: 1e6, help: 'token bucket size per key' },
  { key: 'maxConcurrency', flag: 'max-concurrency', env: 'FORKBOX_MAX_CONCURRENCY', kind: 'int', def: () => Math.max(2, availableParallelism() * 2), min: 1, max: 4096, help: 'executions running at once (default 2 x CPUs)' },
  { key: 'maxQueue', flag: 'max-queue', env: 'FORKBOX_MAX_QUEUE', kind: 'int', def: () => 512, min: 0, max: 100000, help: 'executions waiting for a slot; beyond it: 503 + Retry-After' },
  { key: 'queueTimeoutMs', flag: 'queue-timeout-ms', env: 'FORKBOX_QUEUE_TIMEOUT_MS', kind: 'int', def: () => 30000, min: 1, max: 3600000, help: 'longest wait in the queue before 503' },
  { key: 'bodyLimitBytes', flag: 'body-limit', env: 'FORKBOX_BODY_LIMIT_BYTES', kind: 'int', def: () => 2 * MiB, min: 1024, max: 256 * MiB, help: 'largest request body in bytes; beyond it: 413' },
  { key: 'maxBatch', flag: 'max-batch', env: 'FORKBOX_MAX_BATCH', kind: 'int', def: () => 64, min: 1, max: 10000, help: 'most executions in one batch request' },
  { key: 'batchParallelism', flag: 'batch-parallelism', env: 'FORKBOX_BATCH_PARALLELISM', kind: 'int', def: () => 8, min: 1, max: 1024, help: 'executions of one batch running at once' },
  { key: 'maxTimeoutSeconds', flag: 'max-timeout', env: 'FORKBOX_MAX_TIMEOUT_SECONDS', kind: 'number', def: () => 300, min: 1, max: MAX_TIMEOUT_SECONDS, help: 'largest timeout_seconds a request may ask for' },
  { key: 'shutdownGraceMs', flag: 'shutdown-grace-ms', env: 'FORKBOX_SHUTDOWN_GRACE_MS', kind: 'int', def: () => 10000, min: 0, max: 600000, help: 'on SIGINT/SIGTERM, how long in-flight executions may finish before they are cancelled' },
  { key: 'metricsAuth', flag: 'metrics-auth', env: 'FORKBOX_METRICS_AUTH', kind: 'bool', def: () => true, help: 'require an API key for GET /v1/metrics (--metrics-auth=false to expose it)' },
  { key: 'logCode', flag: 'log-code', env: 'FORKBOX_LOG_CODE', kind: 'bool', def: () => false, help: 'include submitted code in the request log (off by default)' },
  { key: 'logOutput', flag: 'log-output', env: 'FORKBOX_LOG_OUTPUT', kind: 'bool', def: () => false, help: 'include guest-written text (crash detail from the guest) in the log (off by default)' },
  { key: 'maxRunningPerKey', flag: 'max-running-per-key', env: 'FORKBOX_MAX_RUNNING_PER_KEY', kind: 'int', def: () => 0, min: 0, max: 4096, help: 'executions one API key (or client address, auth off) may run at once; 0 = max-concurrency - 1 (at least 1), so one slot stays free for others' },
  { key: 'maxQueuedPerKey', flag: 'max-queued-per-key', env: 'FORKBOX_MAX_QUEUED_PER_KEY', kind: 'int', def: () => 128, min: 0, max: 100000, help: 'executions (each batch item counts) one key may have waiting; beyond it: 429 + Retry-After' },
  { key: 'resultBudgetBytes', flag: 'result-budget', env: 'FORKBOX_RESULT_BUDGET_BYTES', kind: 'int', def: () => 96 * MiB, min: 64 * 1024, max: 16384 * MiB, help: 'finished results held until sent, all requests, bytes of JSON; when full: 503 + Retry-After' },
  { key: 'bodyBudgetBytes', flag: 'body-budget', env: 'FORKBOX_BODY_BUDGET_BYTES', kind: 'int', def: () => 64 * MiB, min: 1024, max: 16384 * MiB, help: 'request bodies held by unfinished exec requests, all requests, bytes; when full: 503 + Retry-After' },
  { key: 'maxBatchOutputBytes', flag: 'max-batch-output', env: 'FORKBOX_MAX_BATCH_OUTPUT_BYTES', kind: 'int', def: () => 32 * MiB, min: 1024, max: 16384 * MiB, help: "one batch's total output (stdout + stderr of every item, bytes of JSON); beyond it: 413" },
  { key: 'maxConnections', flag: 'max-connections', env: 'FORKBOX_MAX_CONNECTIONS', kind: 'int', def: () => 256, min: 1, max: 100000, help: 'open client connections; more are closed at once (keeps descriptors for VMs)' },
  { key: 'headersTimeoutMs', flag: 'headers-timeout-ms', env: 'FORKBOX_HEADERS_TIMEOUT_MS', kind: 'int', def: () => 10000, min: 100, max: 600000, help: "a request's headers must arrive within this time (idle or slow sockets are closed with 408)" },
  { key: 'requestTimeoutMs', flag: 'request-timeout-ms', env: 'FORKBOX_REQUEST_TIMEOUT_MS', kind: 'int', def: () => 60000, min: 100, max: 3600000, help: 'a whole request (headers and body) must arrive within this time; the answer may take longer (up to the exec timeout)' },
  { key: 'keepAliveTimeoutMs', flag: 'keep-alive-timeout-ms', env: 'FORKBOX_KEEP_ALIVE_TIMEOUT_MS', kind: 'int', def: () => 5000, min: 100, max: 600000, help: 'an idle keep-alive connection is closed after this time' },
  { key: 'allowedHosts', flag: 'allowed-hosts', env: 'FORKBOX_ALLOWED_HOSTS', kind: 'list', def: () => [], help: 'comma-separated Host names accepted while auth is off, besides loopback names and --host (DNS-rebinding guard)' },
  { key: 'maxSessionsPerKey', flag: 'max-sessions-per-key', env: 'FORKBOX_MAX_SESSIONS_PER_KEY', kind: 'int', def: () => 16, min: 0, max: 100000, help: 'sessions one API key (or "local" with auth off) may hold at once, paused ones included; beyond it: 429; 0 = no server cap (the engine still caps memory)' },
  { key: 'sessionTimeoutSeconds', flag: 'session-timeout', env: 'FORKBOX_SESSION_TIMEOUT_SECONDS', kind: 'int', def: () => 3600, min: 1, max: 2592000, help: "a session's lifetime when the request gives no timeout_seconds" },
  { key: 'maxSessionTimeoutSeconds', flag: 'max-session-timeout', env: 'FORKBOX_MAX_SESSION_TIMEOUT_SECONDS', kind: 'int', def: () => 86400, min: 1, max: 2592000, help: 'largest session lifetime (timeout_seconds) a request may ask for' },
  { key: 'sessionIdleTimeoutSeconds', flag: 'session-idle-timeout', env: 'FORKBOX_SESSION_IDLE_TIMEOUT_SECONDS', kind: 'int', def: () => 300, min: 1, max: 2592000, help: 'seconds without a call after which a session is paused to disk, when the request gives no idle_timeout_seconds' },
  { key: 'maxSessionIdleTimeoutSeconds', flag: 'max-session-idle-timeout', env: 'FORKBOX_MAX_SESSION_IDLE_TIMEOUT_SECONDS', kind: 'int', def: () => 86400, min: 1, max: 2592000, help: 'largest idle_timeout_seconds a request may ask for' },
  { key: 'maxForkCount', flag: 'max-fork-count', env: 'FORKBOX_MAX_FORK_COUNT', kind: 'int', def: () => 16, min: 1, max: 1024, help: 'most sessions one POST /v1/sessions/{id}/fork may create' },
  { key: 'transferLimitBytes', flag: 'transfer-limit', env: 'FORKBOX_TRANSFER_LIMIT_BYTES', kind: 'int', def: () => 32 * MiB, min: 1024, max: 4096 * MiB, help: 'largest file or tar upload to a session (held against --body-budget) and largest tar download from one, bytes; beyond it: 413' },
  { key: 'memLimitMb', flag: 'mem-limit-mb', env: 'FORKBOX_MEM_LIMIT_MB', kind: 'int', min: 16, max: 1920, help: 'memory limit per execution, MiB (engine default when unset; above 512 the template gets more RAM)' },
  { key: 'poolSize', flag: 'pool-size', env: 'FORKBOX_POOL_SIZE', kind: 'int', min: 0, max: 4096, help: 'pre-created VM shells (VM + vCPU + memory slots, bound to the template) kept ready (engine default when unset)' },
  { key: 'recycle', flag: 'recycle', env: 'FORKBOX_RECYCLE', kind: 'bool', def: () => true, help: 'reset a one-shot fork that answered cleanly in place and reuse it (--recycle=false: destroy every fork)' },
  { key: 'warmForks', flag: 'warm-forks', env: 'FORKBOX_WARM_FORKS', kind: 'int', min: 0, max: 1024, help: 'forks kept pre-warmed by one fixed warm-up exec, each serving one request (engine default when unset)' },
  { key: 'templateWarmForks', flag: 'template-warm-forks', env: 'FORKBOX_TEMPLATE_WARM_FORKS', kind: 'list', def: () => [], item: { re: /^[a-z][a-z0-9-]{0,47}=\d{1,4}$/, what: 'NAME=N' }, help: "warm forks per template as comma-separated NAME=N (e.g. python-data=4,javascript=0); unset: --warm-forks for python, the recipe's warmForks for others" },
  { key: 'workers', flag: 'workers', env: 'FORKBOX_WORKERS', kind: 'int', min: 1, max: 1024, help: 'native vCPU worker threads (engine default when unset)' },
  { key: 'stdoutCapBytes', flag: 'stdout-cap', env: 'FORKBOX_STDOUT_CAP_BYTES', kind: 'int', min: 0, max: 64 * MiB, help: 'stdout kept per execution, bytes; the rest is dropped and flagged (engine default when unset)' },
  { key: 'stderrCapBytes', flag: 'stderr-cap', env: 'FORKBOX_STDERR_CAP_BYTES', kind: 'int', min: 0, max: 64 * MiB, help: 'stderr kept per execution, bytes (engine default when unset)' },
];

function parseOne(o: Option, raw: string | undefined, from: string): string | number | boolean | string[] | undefined {
  const fallback = o.def?.();
  if (raw === undefined || raw.trim() === '') return fallback;
  switch (o.kind) {
    case 'string': return fallback === undefined ? optionalString(raw) : stringValue(raw, fallback as string);
    case 'int': return intValue(from, raw, 0, o.min ?? -Infinity, o.max ?? Infinity);
    case 'number': return numberValue(from, raw, 0, o.min ?? -Infinity, o.max ?? Infinity);
    case 'bool': return boolValue(from, raw, false);
    case 'list': {
      const items = raw.split(',').map((x) => x.trim().toLowerCase()).filter((x) => x !== '');
      const item = o.item ?? { re: /^[a-z0-9.:[\]_-]{1,255}$/, what: 'a host name' };
      const bad = items.find((x) => !item.re.test(x));
      if (bad !== undefined) throw new ConfigError(`${from}: ${JSON.stringify(bad)} is not ${item.what}`);
      return items as unknown as string;
    }
  }
}

/** Resolves the configuration from flags and the environment. Throws ConfigError on bad input. */
export function loadServerConfig(args: string[], env: Source = process.env): ServerConfig {
  const spec: Record<string, { type: 'string' }> = {};
  for (const o of OPTIONS) spec[o.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    // Boolean options also accept a bare flag (`--log-code` means true).
    const norm = args.map((a) => {
      const o = OPTIONS.find((x) => x.kind === 'bool' && a === `--${x.flag}`);
      return o ? `--${o.flag}=true` : a;
    });
    values = parseArgs({ args: norm, options: spec, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const cfg: Record<string, unknown> = {};
  for (const o of OPTIONS) {
    const flagRaw = values[o.flag];
    const v = typeof flagRaw === 'string'
      ? parseOne(o, flagRaw, `--${o.flag}`)
      : parseOne(o, env[o.env], o.env);
    if (v !== undefined) cfg[o.key] = v;
  }
  return cfg as unknown as ServerConfig;
}

/** `forkbox serve --help` text, generated from OPTIONS. */
export function usage(): string {
  const lines = ['usage: forkbox serve [options]', '', 'Every option is also an environment variable; a flag wins.', ''];
  for (const o of OPTIONS) {
    const d = o.def?.();
    const shown = Array.isArray(d) ? (d.length ? d.join(',') : undefined) : d;
    lines.push(`  --${o.flag} (${o.env})${shown === undefined ? '' : `  [default: ${String(shown)}]`}`);
    lines.push(`      ${o.help}`);
  }
  return lines.join('\n');
}

export { ConfigError };
