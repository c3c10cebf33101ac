// log.ts — one JSON-lines logger. Events are dot.case (`fork.created`,
// `exec.timeout`); fields are flat JSON. Writes to stderr so stdout stays free
// for command output. Level from FORKBOX_LOG_LEVEL (debug|info|warn|error|silent).

type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;
export type LogSink = (line: string) => void;

let threshold = order[(process.env.FORKBOX_LOG_LEVEL as Level | 'silent' | undefined) ?? 'info'] ?? order.info;
let sink: LogSink = (line) => process.stderr.write(line + '\n');

export function setLogLevel(level: Level | 'silent'): void {
  threshold = order[level];
}

/** Redirects log lines (tests capture them). Returns the previous sink. */
export function setLogSink(next: LogSink): LogSink {
  const prev = sink;
  sink = next;
  return prev;
}

function emit(level: Level, event: string, fields?: LogFields): void {
  if (order[level] < threshold) return;
  const rec: LogFields = { time: new Date().toISOString(), level, event, ...fields };
  if (rec.err instanceof Error) rec.err = { message: rec.err.message, code: (rec.err as { code?: unknown }).code };
  sink(JSON.stringify(rec));
}

export const log = {
  debug: (event: string, fields?: LogFields) => emit('debug', event, fields),
  info: (event: string, fields?: LogFields) => emit('info', event, fields),
  warn: (event: string, fields?: LogFields) => emit('warn', event, fields),
  error: (event: string, fields?: LogFields) => emit('error', event, fields),
};
