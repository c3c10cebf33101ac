// session-store.ts — paused sessions on disk, one directory each under the
// cache's sessions/ directory (0700): the child snapshot's sparse memory file
// and state file (only what the session changed against its template) and
// session.json (the session's record, its template's key, and the SHA-256 of
// the state file). The memory file's pages carry their own checksum in the
// state file, which the VMM checks when it opens the snapshot (hashing 50 MiB
// there costs milliseconds; SHA-256 in JS would cost a hundred). A pause
// writes the snapshot files first and session.json last (tmp + rename: the
// commit point). Paused sessions are found again at start, so they survive a
// restart.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gone, internal, type ForkboxError } from '../lib/errors.js';
import { log } from '../lib/log.js';
import { Snapshot } from '../vmm/vmm.js';
import type { PausedFiles, Session, SessionMeta, SessionSnapshot } from './session.js';

const RECORD = 'session.json';
const RECORD_MAX = 1 << 20;
const ID = /^ses_[A-Za-z0-9_-]{8,64}$/;

interface Digest { sha256: string; size: number }
export interface SessionRecord {
  version: 1;
  meta: SessionMeta;
  templateKey: string;
  cwdDone: boolean;
  pausedAt: number;
  /** Size of the memory file (its content is checksummed inside the state file). */
  memSize: number;
  state: Digest;
}

async function digest(path: string): Promise<Digest> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** Where paused sessions go (SessionStore on disk; tests may keep them in memory). */
export interface PauseStore {
  write(s: Session, child: SessionSnapshot, templateKey: string): Promise<PausedFiles>;
  open(files: PausedFiles, root: SessionSnapshot, expectKey: string): Promise<SessionSnapshot>;
  remove(id: string): Promise<void>;
  list(): Promise<Array<{ record: SessionRecord; files: PausedFiles }>>;
}

export class SessionStore implements PauseStore {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  #dir(id: string): string {
    if (!ID.test(id)) throw internal(`bad session id ${JSON.stringify(id)}`);
    return join(this.root, id);
  }

  /** Writes a paused session: the child snapshot, its digests, then the record. */
  async write(s: Session, child: SessionSnapshot, templateKey: string): Promise<PausedFiles> {
    const dir = this.#dir(s.id);
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const memPath = join(dir, 'child.mem'), statePath = join(dir, 'child.state');
    await child.write(memPath, statePath);
    const [st, state] = await Promise.all([stat(memPath), digest(statePath)]);
    const rec: SessionRecord = { version: 1, meta: s.meta, templateKey, cwdDone: s.cwdDone, pausedAt: Date.now(), memSize: st.size, state };
    const tmp = join(dir, `${RECORD}.tmp.${randomBytes(6).toString('hex')}`);
    await writeFile(tmp, JSON.stringify(rec), { mode: 0o600, flag: 'wx' });
    await rename(tmp, join(dir, RECORD));
    return { dir, memPath, statePath, bytes: st.blocks * 512 + state.size };
  }

  /** Opens a paused session's snapshot after checking both digests; the caller forks it. */
  async open(rec: PausedFiles, root: SessionSnapshot, expectKey: string): Promise<SessionSnapshot> {
    const r = await this.#record(rec.dir);
    if (r.templateKey !== expectKey)
      throw gone(`session ${r.meta.id} was paused on a template that is no longer loaded (it was rebuilt); create a new session`);
    const [mst, state] = await Promise.all([stat(rec.memPath), digest(rec.statePath)]);
    const corrupt = (): ForkboxError => {
      log.error('session.corrupt', { session: r.meta.id });
      return gone(`session ${r.meta.id}: its paused state on disk does not match its checksums (corrupt); create a new session`);
    };
    if (mst.size !== r.memSize || state.sha256 !== r.state.sha256 || state.size !== r.state.size) throw corrupt();
    try {
      return Snapshot.openChild(root as Snapshot, rec.memPath, rec.statePath);   // checks the pages' own checksum
    } catch (e) {
      if ((e as { code?: string }).code === 'EBADMSG' || (e as { code?: string }).code === 'ESTALE') throw corrupt();
      throw e;
    }
  }

  async remove(id: string): Promise<void> {
    await rm(this.#dir(id), { recursive: true, force: true });
  }

  async #record(dir: string): Promise<SessionRecord> {
    const st = await stat(join(dir, RECORD));
    if (st.size > RECORD_MAX) throw internal(`${RECORD} is too large`);
    const r = JSON.parse(await readFile(join(dir, RECORD), 'utf8')) as SessionRecord;
    if (r.version !== 1 || typeof r.meta?.id !== 'string' || typeof r.meta.owner !== 'string' || typeof r.templateKey !== 'string' ||
        typeof r.memSize !== 'number' || typeof r.state?.sha256 !== 'string')
      throw internal(`${RECORD}: not a session record`);
    return r;
  }

  /** Every paused session on disk (records that cannot be read are logged and left alone). */
  async list(): Promise<Array<{ record: SessionRecord; files: PausedFiles }>> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const out: Array<{ record: SessionRecord; files: PausedFiles }> = [];
    for (const n of names) {
      if (!ID.test(n)) continue;
      const dir = join(this.root, n);
      try {
        const record = await this.#record(dir);
        if (record.meta.id !== n) throw internal('record id differs from its directory');
        const memPath = join(dir, 'child.mem'), statePath = join(dir, 'child.state');
        const st = await stat(memPath);
        out.push({ record, files: { dir, memPath, statePath, bytes: st.blocks * 512 + record.state.size } });
      } catch (e) {
        log.warn('session.unreadable', { dir: n, err: e as Error });
      }
    }
    return out;
  }
}
