// config.ts — typed readers for configuration values from the environment and
// command-line flags. Every reader validates and fails with a clear message
// naming the variable; nothing silently falls back when a value is malformed.
// The server's own settings (and their defaults) live in src/server/config.ts.

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export type Source = Record<string, string | undefined>;

/** An integer in [min, max]; `fallback` when unset or empty. */
export function intValue(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw.trim() === '') return fallback;
  const s = raw.trim();
  if (!/^-?\d+$/.test(s)) throw new ConfigError(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${s}`);
  return n;
}

/** A finite number in [min, max]; `fallback` when unset or empty. */
export function numberValue(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw.trim());
  if (!Number.isFinite(n)) throw new ConfigError(`${name} must be a number, got ${JSON.stringify(raw)}`);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** 1/true/yes/on or 0/false/no/off; `fallback` when unset or empty. */
export function boolValue(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw.trim() === '') return fallback;
  const s = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  throw new ConfigError(`${name} must be a boolean (1/0, true/false), got ${JSON.stringify(raw)}`);
}

/** A non-empty string; `fallback` when unset or empty. */
export function stringValue(raw: string | undefined, fallback: string): string {
  return raw === undefined || raw.trim() === '' ? fallback : raw.trim();
}

/** A string or undefined when unset or empty. */
export function optionalString(raw: string | undefined): string | undefined {
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}
