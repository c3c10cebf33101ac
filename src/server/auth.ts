// auth.ts — API keys. Keys are read from a file (one per line, `key` or
// `id:key`, `#` comments; or Zeroboot's format, a JSON array of key strings),
// kept only as SHA-256 hashes, and checked by hashing
// the presented bearer token and comparing it against every stored hash with
// crypto.timingSafeEqual (no early exit, so timing does not reveal which key
// or how much of it matched). The key id — never the key — goes into logs.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { unauthorized, type ForkboxError } from '../lib/errors.js';

export interface KeyEntry { id: string; hash: Buffer }

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Zeroboot's key file: a JSON array of key strings (each becomes a `key` line). */
function fromJsonArray(text: string, source: string): string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: starts with "[" but is not a JSON array of key strings (${(e as Error).message})`);
  }
  if (!Array.isArray(v)) throw new Error(`${source}: expected a JSON array of key strings`);
  return v.map((k, i) => {
    if (typeof k !== 'string') throw new Error(`${source}: item ${i} of the JSON array is not a string`);
    if (/[\r\n]/.test(k) || k.trim().startsWith('#')) throw new Error(`${source}: item ${i} of the JSON array is not a valid key`);
    if (k.includes(':')) throw new Error(`${source}: item ${i} of the JSON array contains ":" (use the line format for id:key)`);
    return k;
  }).join('\n');
}

/** Parses a key file's text. Throws Error naming the line on malformed input. */
export function parseKeyFile(text: string, source = 'keys file'): KeyEntry[] {
  const out: KeyEntry[] = [];
  const ids = new Set<string>();
  const lines = text.trimStart().startsWith('[') ? fromJsonArray(text, source) : text;
  lines.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    let id: string;
    let key: string;
    const colon = line.indexOf(':');
    if (colon >= 0) {
      id = line.slice(0, colon).trim();
      key = line.slice(colon + 1).trim();
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) throw new Error(`${source}:${i + 1}: key id must be 1-64 of [A-Za-z0-9._-]`);
    } else {
      key = line;
      id = 'key-' + sha256(key).toString('hex').slice(0, 8);
    }
    if (key.length < 16) throw new Error(`${source}:${i + 1}: key is shorter than 16 characters`);
    if (/\s/.test(key)) throw new Error(`${source}:${i + 1}: key contains whitespace`);
    if (ids.has(id)) throw new Error(`${source}:${i + 1}: duplicate key id ${id}`);
    ids.add(id);
    out.push({ id, hash: sha256(key) });
  });
  return out;
}

export function loadKeyFile(path: string): KeyEntry[] {
  const keys = parseKeyFile(readFileSync(path, 'utf8'), path);
  if (keys.length === 0) throw new Error(`${path}: no API keys in file (remove FORKBOX_API_KEYS_FILE to run without auth)`);
  return keys;
}

export class Authenticator {
  private keys: readonly KeyEntry[];
  constructor(keys: readonly KeyEntry[]) { this.keys = keys; }

  /** Swaps in a new key set (SIGHUP reload). Auth cannot be switched off this way. */
  replace(keys: readonly KeyEntry[]): void {
    if (this.keys.length > 0 && keys.length === 0) throw new Error('refusing to reload an empty key set: that would turn auth off');
    this.keys = keys;
  }

  get enabled(): boolean { return this.keys.length > 0; }

  /** The key id for an Authorization header value, or a ForkboxError (401). */
  check(header: string | undefined): { keyId: string } | ForkboxError {
    if (header === undefined || header === '') {
      return unauthorized('missing API key: send "Authorization: Bearer <key>"');
    }
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) return unauthorized('malformed Authorization header: expected "Bearer <key>"');
    const presented = sha256(m[1]!);
    let found: string | undefined;
    for (const k of this.keys) {
      // Compare every entry; remember a match without branching out early.
      if (timingSafeEqual(presented, k.hash) && found === undefined) found = k.id;
    }
    return found === undefined ? unauthorized('invalid API key') : { keyId: found };
  }
}
