// sync.ts — `forkbox sync LOCAL_DIR SESSION:/path [--delete]` and
// `forkbox sync SESSION:/path LOCAL_DIR [--delete]`: one tar each way through
// the JS SDK (files.upload / files.download). --delete makes the destination
// mirror the source: local→session removes remote entries the local directory
// lacks, session→local removes local entries the session lacks (as the
// sandbox skill's sync-to and sync-from scripts do).
import { parseArgs } from 'node:util';
import { ForkboxError, Sandbox } from '../../sdk/js/src/index.js';

const USAGE = `usage: forkbox sync LOCAL_DIR SESSION:/path [--delete]    local → session
       forkbox sync SESSION:/path LOCAL_DIR [--delete]    session → local
--delete removes, at the destination, what the source does not have.
`;

const REMOTE = /^([A-Za-z0-9_-]{1,128}):(\/.*)$/;

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { delete: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    process.stderr.write(`forkbox sync: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [a, b] = positionals;
  const ra = a !== undefined ? REMOTE.exec(a) : null;
  const rb = b !== undefined ? REMOTE.exec(b) : null;
  if (positionals.length !== 2 || (ra === null) === (rb === null)) {
    process.stderr.write(`forkbox sync: give one local directory and one SESSION:/path\n${USAGE}`);
    return 2;
  }
  const del = values.delete === true;
  try {
    const s = await Sandbox.connect((ra ?? rb)![1]!);
    const r = ra === null
      ? await s.files.upload(a!, rb![2]!, { delete: del })
      : await s.files.download(ra[2]!, b!, { delete: del });
    for (const p of r.deleted) process.stderr.write(`deleted ${p}\n`);
    for (const p of r.skipped) process.stderr.write(`skipped ${p} (not a regular file or directory)\n`);
    process.stderr.write(`forkbox sync: ${r.files} files (${r.bytes} bytes), ${r.dirs} directories${del ? `, ${r.deleted.length} deleted` : ''}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`forkbox sync: ${e instanceof ForkboxError ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
}
