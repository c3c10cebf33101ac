// tar.test.ts — the ustar+pax reader/writer (src/lib/tar.ts): round trips,
// interchange with GNU tar in both directions (long names, symlinks, pax and
// GNU long-name headers), and hostile archives: absolute names, `..`, hard
// links, devices, fifos, escaping symlinks, absurd sizes, truncation, bad checksums.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TarError, linkStaysInside, readTar, safeName, writeTar, type TarEntry } from '../../src/lib/tar.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const longName = 'deep/' + 'd'.repeat(120) + '/' + 'f'.repeat(90) + '.txt';

const sample: TarEntry[] = [
  { name: 'a', type: 'dir', mode: 0o755, mtime: 1700000000, data: new Uint8Array(0) },
  { name: 'a/hello.txt', type: 'file', mode: 0o644, mtime: 1700000001, data: bytes('hello\n') },
  { name: 'a/empty', type: 'file', mode: 0o600, mtime: 1700000002, data: new Uint8Array(0) },
  { name: 'a/block', type: 'file', mode: 0o755, mtime: 1700000003, data: new Uint8Array(512).fill(7) },
  { name: longName, type: 'file', mode: 0o644, mtime: 1700000004, data: bytes('long ✓') },
  { name: 'a/link', type: 'symlink', mode: 0o777, mtime: 1700000005, data: new Uint8Array(0), linkname: 'hello.txt' },
];

test('writeTar → readTar round trip keeps names, types, modes, mtimes and bytes', () => {
  const back = readTar(writeTar(sample));
  assert.equal(back.length, sample.length);
  for (const [i, e] of sample.entries()) {
    const b = back[i]!;
    assert.equal(b.name, e.name);
    assert.equal(b.type, e.type);
    assert.equal(b.mode, e.mode);
    assert.equal(b.mtime, e.mtime);
    assert.deepEqual(Buffer.from(b.data), Buffer.from(e.data));
    assert.equal(b.linkname, e.linkname);
  }
  assert.equal(writeTar(sample).length % 512, 0);
});

test('GNU tar reads what writeTar writes, and readTar reads GNU tar (gnu and pax formats)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-tar-'));
  try {
    writeFileSync(join(dir, 'ours.tar'), writeTar(sample));
    mkdirSync(join(dir, 'x'));
    execFileSync('tar', ['-xf', join(dir, 'ours.tar'), '-C', join(dir, 'x')]);
    assert.equal(readFileSync(join(dir, 'x', 'a/hello.txt'), 'utf8'), 'hello\n');
    assert.equal(readFileSync(join(dir, 'x', longName), 'utf8'), 'long ✓');
    assert.equal(readlinkSync(join(dir, 'x', 'a/link')), 'hello.txt');
    assert.equal(statSync(join(dir, 'x', 'a/block')).mode & 0o777, 0o755);
    for (const format of ['gnu', 'pax', 'ustar']) {
      const out = join(dir, `${format}.tar`);
      const members = format === 'ustar' ? ['a'] : ['a', 'deep'];
      execFileSync('tar', [`--format=${format}`, '-cf', out, '-C', join(dir, 'x'), ...members]);
      const got = new Map(readTar(readFileSync(out)).map((e) => [e.name, e]));
      assert.equal(Buffer.from(got.get('a/hello.txt')!.data).toString(), 'hello\n', format);
      assert.equal(got.get('a')!.type, 'dir');
      assert.equal(got.get('a/link')!.type, 'symlink');
      if (format !== 'ustar') assert.equal(Buffer.from(got.get(longName)!.data).toString(), 'long ✓', format);
    }
    // "./"-prefixed names (tar -C dir .) are normalized, "." itself dropped.
    execFileSync('tar', ['-cf', join(dir, 'dot.tar'), '-C', join(dir, 'x', 'a'), '.']);
    const names = readTar(readFileSync(join(dir, 'dot.tar'))).map((e) => e.name).sort();
    assert.deepEqual(names, ['block', 'empty', 'hello.txt', 'link']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** One raw header block with the given fields, checksum fixed up. */
function rawHeader(name: string, type: string, size: number | string, linkname = ''): Uint8Array {
  const h = new Uint8Array(512);
  h.set(bytes(name).subarray(0, 100), 0);
  h.set(bytes('0000644\0'), 100);
  h.set(bytes(typeof size === 'number' ? size.toString(8).padStart(11, '0') + '\0' : size), 124);
  h.set(bytes('00000000000\0'), 136);
  h[156] = type.charCodeAt(0);
  h.set(bytes(linkname), 157);
  h.set(bytes('ustar\x0000'), 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(bytes(sum.toString(8).padStart(6, '0') + '\0 '), 148);
  return h;
}
const cat = (...p: Uint8Array[]): Uint8Array => Buffer.concat(p);
const end = new Uint8Array(1024);

test('hostile archives are refused with TarError naming the member', () => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['absolute', cat(rawHeader('/etc/passwd', '0', 0), end), /absolute/],
    ['dotdot', cat(rawHeader('a/../../x', '0', 0), end), /"\.\."/],
    ['hardlink', cat(rawHeader('h', '1', 0, 'a'), end), /hard link/],
    ['chardev', cat(rawHeader('c', '3', 0), end), /device/],
    ['blockdev', cat(rawHeader('b', '4', 0), end), /device/],
    ['fifo', cat(rawHeader('p', '6', 0), end), /fifo/],
    ['symlink absolute', cat(rawHeader('s', '2', 0, '/etc'), end), /outside/],
    ['symlink up', cat(rawHeader('d/s', '2', 0, '../../x'), end), /outside/],
    ['absurd size', cat(rawHeader('big', '0', 0o77777777777), end), /truncated/],
    ['truncated data', cat(rawHeader('t', '0', 100), new Uint8Array(50)), /truncated/],
    ['partial header', cat(rawHeader('t', '0', 0), new Uint8Array(100)), /truncated/],
    ['not octal', cat(rawHeader('n', '0', 'zzzzzzzzzzz\0'), end), /octal/],
    ['pax path escape', cat(rawHeader('PaxHeader', 'x', 18), pad512(bytes('18 path=../../etc\n')), rawHeader('ok', '0', 0), end), /"\.\."/],
    ['huge pax header', cat(rawHeader('PaxHeader', 'x', 2 * 1024 * 1024), new Uint8Array(2 * 1024 * 1024), end), /extended header/],
    ['garbage', new Uint8Array(512).fill(65), /checksum/],
  ];
  for (const [what, buf, re] of cases) {
    assert.throws(() => readTar(buf), (e: unknown) => e instanceof TarError && re.test(e.message), what);
  }
  const bad = rawHeader('x', '0', 0);
  bad[0] = 'y'.charCodeAt(0); // checksum no longer matches
  assert.throws(() => readTar(cat(bad, end)), /checksum/);
  // Too many members.
  const many = cat(...Array.from({ length: 5 }, (_, i) => rawHeader(`f${i}`, '0', 0)), end);
  assert.throws(() => readTar(many, { maxEntries: 4 }), /more than 4/);
  assert.equal(readTar(many).length, 5);
});

function pad512(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(b.length / 512) * 512);
  out.set(b);
  return out;
}

test('safeName and linkStaysInside', () => {
  assert.equal(safeName('./a//b/./c/'), 'a/b/c');
  assert.throws(() => safeName('a/../b'), TarError);
  assert.throws(() => safeName('/a'), TarError);
  assert.throws(() => safeName('a\0b'), TarError);
  assert.equal(linkStaysInside('a/b/l', '../c'), true);
  assert.equal(linkStaysInside('a/l', '../../c'), false);
  assert.equal(linkStaysInside('l', '/etc/passwd'), false);
  assert.equal(linkStaysInside('l', 'x/../../y'), false);
  assert.throws(() => writeTar([{ name: '../x', type: 'file', mode: 0o644, mtime: 0, data: new Uint8Array(0) }]), TarError);
  assert.deepEqual(readTar(new Uint8Array(0)), []);
  assert.deepEqual(readTar(end), []);
});
