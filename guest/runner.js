// runner.js - the forkbox exec loop for JavaScript, run inside the VM on Debian's
// node by the guest runtime (the same contract as runner.py). It preloads Node's
// built-in modules, then serves requests from the control device /dev/forkbox:
// when the event loop has drained ('beforeExit') it answers the previous request
// and reads the next one (the first read is the template's snapshot point), runs
// the code, and lets timers and promises run to completion before answering
// {"exit_code": n[, "result": inspect, "results": [its text/plain bundle]]}. process.exit(n) is intercepted: it ends
// the exec with n, never the VM. Before the snapshot it dry-runs typical programs
// (output to /dev/null) and collects garbage, and a fork's warm-up request dry-runs
// one more, so a user's exec finds its code compiled and its pages touched.
'use strict';
const fs = require('fs');
const vm = require('vm');
const util = require('util');
const Module = require('module');
const inspector = require('inspector');
const { Writable } = require('stream');

const CONTROL = '/dev/forkbox';
const CHUNK = 1 << 20;
const RESULT_MAX = 16 * 1024; // characters of a session exec's result kept (the answer must fit the mailbox result area)
// The engine's warm-up request for a fork (javascript.ts warmupCode): a program that does
// nothing, which the runner answers by dry-running DRY_PROGRAMS[0] with its output discarded.
const FORK_WARMUP = '/* forkbox: warm-up */';
// Dry runs before the snapshot: the paths user programs take (console.log, a top-level
// await, timers, an uncaught error, process.exit, a session result), compiled and their
// inline caches settled in the template. Not the benchmark's program text: V8's
// compilation cache must not answer a user's program from a warm-up.
// Every declaration is inside a block: a dry run leaves nothing in the global scope.
const DRY_PROGRAMS = [
  '{ const v = [3, 4]; console.log(v[0] * v[1] - 10); }',
  '{ const nums = [1, 2, 3]; console.log(nums.reduce((a, b) => a + b, 0) / nums.length, "ok", { a: 1 }); }',
  '{ const r = await new Promise((res) => setTimeout(() => res(7), 0)); console.log(r); }',
  'setTimeout(() => console.log("t"), 0); Promise.resolve().then(() => console.error("p"));',
  'throw new TypeError("dry run")',
  'process.exit(3)',
];
// ... and in a session's REPL mode (declaration-free: a session's names are its own)
const DRY_SESSION_PROGRAMS = [
  '({ dry: [1, "run"] })',
  'await new Promise((res) => setTimeout(res, 0)); 2 ** 3',
  'throw new RangeError("dry run")',
  '1 +',
];
const DRY_ROUNDS = 4;
const SETTLE_MS = 20; // ms the runner idles after its last collection before the snapshot

const writeSync = fs.writeSync;
const readSync = fs.readSync;
const inspect = util.inspect;

// ---- output: fds 1 and 2, written through synchronously (a crash loses nothing) ----
// While a dry run is on, everything the runner would write goes to /dev/null.
const sink = { on: false, fd: fs.openSync('/dev/null', 'w') };
function writeAll(fd, data) {
  if (sink.on) fd = sink.fd;
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}
function syncStream(fd) {
  const s = new Writable({
    decodeStrings: false,
    write(chunk, enc, cb) {
      try { writeAll(fd, typeof chunk === 'string' ? Buffer.from(chunk, enc === 'buffer' ? 'utf8' : enc) : chunk); cb(); } catch (e) { cb(e); }
    },
  });
  // Stream.write() returns only after the bytes are in the response area.
  s.write = function write(chunk, enc, cb) {
    if (typeof enc === 'function') { cb = enc; enc = undefined; }
    writeAll(fd, typeof chunk === 'string' ? Buffer.from(chunk, enc || 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if (cb) process.nextTick(cb);
    return true;
  };
  s.fd = fd;
  s.isTTY = false;
  s.columns = 80;
  return s;
}
const stdout = syncStream(1);
const stderr = syncStream(2);
Object.defineProperty(process, 'stdout', { configurable: true, enumerable: true, get: () => stdout });
Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => stderr });
const baseConsole = new console.Console({ stdout, stderr, colorMode: false });
for (const k of Object.keys(baseConsole)) console[k] = baseConsole[k];

// ---- randomness: every fork differs ----
// The runtime reseeds its CSPRNG (getrandom, /dev/urandom) from the host on every
// request. V8's Math.random state and OpenSSL's DRBG were seeded once at template
// boot and are shared by every fork, so the runner serves Math.random from a
// xoshiro128** seeded per exec, and crypto's random functions from the runtime.
const urandomFd = fs.openSync('/dev/urandom', 'r');
const seedBuf = Buffer.alloc(16);
let s0 = 1, s1 = 2, s2 = 3, s3 = 4;
function reseedMath() {
  readSync(urandomFd, seedBuf, 0, 16, null);
  s0 = seedBuf.readUInt32LE(0); s1 = seedBuf.readUInt32LE(4); s2 = seedBuf.readUInt32LE(8); s3 = seedBuf.readUInt32LE(12) | 1;
}
function next32() {
  const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
  const t = s1 << 9;
  s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
  return r;
}
function rotl(x, k) { return (x << k) | (x >>> (32 - k)); }
Object.defineProperty(Math, 'random', {
  configurable: true, writable: true,
  value: function random() { return ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992; },
});

const crypto = require('crypto');
function fillRandom(view) {
  const u8 = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  let off = 0;
  while (off < u8.length) off += readSync(urandomFd, u8, off, u8.length - off, null);
  return view;
}
function getRandomValues(view) {
  if (!ArrayBuffer.isView(view) || view instanceof Float32Array || view instanceof Float64Array || view instanceof DataView) {
    throw new TypeError('The data argument must be an integer-type TypedArray');
  }
  if (view.byteLength > 65536) {
    const e = new Error(`The ArrayBufferView's byte length (${view.byteLength}) exceeds the number of bytes of entropy available via this API (65536)`);
    e.name = 'QuotaExceededError';
    throw e;
  }
  return fillRandom(view);
}
const hex = [];
for (let i = 0; i < 256; i++) hex.push((i + 0x100).toString(16).slice(1));
function randomUUID() {
  const b = fillRandom(Buffer.alloc(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  let s = '';
  for (let i = 0; i < 16; i++) { s += hex[b[i]]; if (i === 3 || i === 5 || i === 7 || i === 9) s += '-'; }
  return s;
}
function randomBytes(n, cb) {
  const b = fillRandom(Buffer.alloc(n));
  if (typeof cb === 'function') { process.nextTick(cb, null, b); return undefined; }
  return b;
}
function randomFillSync(buf, offset = 0, size) {
  const view = ArrayBuffer.isView(buf) ? buf : new Uint8Array(buf);
  const u8 = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const end = size === undefined ? u8.length : offset + size;
  fillRandom(u8.subarray(offset, end));
  return buf;
}
function randomFill(buf, offset, size, cb) {
  if (typeof offset === 'function') { cb = offset; offset = 0; size = undefined; } else if (typeof size === 'function') { cb = size; size = undefined; }
  randomFillSync(buf, offset, size);
  process.nextTick(cb, null, buf);
}
const origRandomInt = crypto.randomInt;
function randomInt(min, max, cb) {
  if (max === undefined || typeof max === 'function') { cb = max; max = min; min = 0; }
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max <= min || max - min >= 2 ** 48) return origRandomInt(min, max, cb);
  const range = max - min, limit = 2 ** 48 - (2 ** 48 % range), b = Buffer.alloc(6);
  let x;
  do { fillRandom(b); x = b.readUIntBE(0, 6); } while (x >= limit);
  const v = min + (x % range);
  if (typeof cb === 'function') { process.nextTick(cb, null, v); return undefined; }
  return v;
}
for (const [k, v] of Object.entries({ randomBytes, randomFillSync, randomFill, randomUUID, randomInt, getRandomValues, pseudoRandomBytes: randomBytes })) {
  const d = Object.getOwnPropertyDescriptor(crypto, k);
  // crypto.getRandomValues is a fixed getter that forwards to webcrypto's (replaced below)
  if (!d || d.configurable || d.writable) Object.defineProperty(crypto, k, { configurable: true, enumerable: true, writable: true, value: v });
}
if (crypto.webcrypto) {
  Object.defineProperty(crypto.webcrypto, 'getRandomValues', { configurable: true, writable: true, value: getRandomValues });
  Object.defineProperty(crypto.webcrypto, 'randomUUID', { configurable: true, writable: true, value: randomUUID });
}
if (globalThis.crypto && globalThis.crypto !== crypto.webcrypto) {
  try { Object.defineProperty(globalThis.crypto, 'getRandomValues', { configurable: true, writable: true, value: getRandomValues }); } catch { /* read-only */ }
}

// ---- process.exit: ends the exec with its code, never the VM ----
class ExitSignal { constructor(code) { this.code = code; } }
const realExit = process.exit;
process.exit = function exit(code) {
  if (code !== undefined) process.exitCode = code;
  throw new ExitSignal(process.exitCode);
};
process.reallyExit = (code) => { throw new ExitSignal(code); };
process.abort = () => { throw new ExitSignal(134); };

// ---- built-in modules as globals, as for `node -e` (fs, path, crypto, ...) ----
for (const name of Module.builtinModules) {
  if (name.startsWith('_') || name.includes('/') || name in globalThis) continue;
  Object.defineProperty(globalThis, name, {
    configurable: true, enumerable: false,
    get() { const v = require(name); Object.defineProperty(globalThis, name, { configurable: true, writable: true, enumerable: false, value: v }); return v; },
    set(v) { Object.defineProperty(globalThis, name, { configurable: true, writable: true, enumerable: true, value: v }); },
  });
}

// ---- preloads (argv: --preload a,b,c) ----
const preloadFailed = {};
{
  const i = process.argv.indexOf('--preload');
  const names = i >= 0 && process.argv[i + 1] ? process.argv[i + 1].split(',').filter(Boolean) : [];
  for (const name of names) {
    try { require(name); } catch (e) { preloadFailed[name] = String(e && e.message); }
  }
}

// ---- one exec ----
const baseEnv = { ...process.env };
const baseCwd = '/tmp';
try { process.chdir(baseCwd); } catch { /* stays where it is */ }
const ctl = fs.openSync(CONTROL, 'r+');
let current = null; // { code: exit code so far, result, done }

function statusOf(code) {
  if (code === undefined || code === null) return 0;
  const n = Number(code);
  return Number.isInteger(n) ? n & 0xff : 1;
}

// Timers the program set, so an exit (process.exit, an uncaught error) cancels them
// like a real exit would: nothing the program scheduled runs afterwards.
const timersMod = require('timers');
const rawSetImmediate = timersMod.setImmediate;
const rawSetTimeout = timersMod.setTimeout;
const liveTimers = new Map(); // timer -> its clear function
function tracked(orig, clear, repeats) {
  const wrapped = function (cb, ...args) {
    if (typeof cb !== 'function') return orig(cb, ...args);
    const owner = current;
    const t = orig(function (...a) {
      if (!repeats) liveTimers.delete(t);
      if (owner && owner.done) return undefined;
      return cb.apply(this, a);
    }, ...args);
    liveTimers.set(t, clear);
    return t;
  };
  for (const k of Object.getOwnPropertySymbols(orig)) wrapped[k] = orig[k]; // util.promisify.custom
  return wrapped;
}
function untracked(clear) {
  return function (t) { liveTimers.delete(t); return clear(t); };
}
{
  const { setTimeout: st, setInterval: si, setImmediate: sm, clearTimeout: ct, clearInterval: ci, clearImmediate: cm } = timersMod;
  const api = {
    setTimeout: tracked(st, ct, false), setInterval: tracked(si, ci, true), setImmediate: tracked(sm, cm, false),
    clearTimeout: untracked(ct), clearInterval: untracked(ci), clearImmediate: untracked(cm),
  };
  Object.assign(globalThis, api);
  Object.assign(timersMod, api);
}

function cancelPending() {
  for (const [t, clear] of liveTimers) clear(t);
  liveTimers.clear();
  for (const h of process._getActiveHandles()) {
    if (h === stdout || h === stderr) continue;
    try {
      if (typeof h._onTimeout === 'function' || (h.constructor && h.constructor.name === 'Timeout')) clearTimeout(h);
      else if (typeof h.close === 'function') h.close();
      else if (typeof h.unref === 'function') h.unref();
    } catch { /* a handle that cannot be closed stays */ }
  }
}

function finish(code) {
  if (!current || current.done) return;
  current.done = true;
  current.code = code;
  cancelPending();
}

// the program's frames only: the runner's own start at the frame that ran the code
function trimStack(text) {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => /^\s+at (Script\.runInThisContext|runRequest|Session\.post) |\/opt\/forkbox\/runner\.js:/.test(l));
  return i > 0 ? lines.slice(0, i).join('\n') : text;
}

function printError(e) {
  let text;
  try {
    text = e instanceof Error || (e && typeof e.stack === 'string') ? inspect(e) : 'Uncaught ' + inspect(e);
  } catch {
    text = String(e);
  }
  writeAll(2, trimStack(text) + '\n');
}

function onFatal(e) {
  if (e instanceof ExitSignal) { finish(statusOf(e.code)); return; }
  if (current && current.done) return; // after exit(): dropped, as the process would be gone
  printError(e);
  finish(1);
}
process.on('uncaughtException', onFatal);

const AsyncFunction = (async () => {}).constructor;

/** The code as a script (its completion value is the result), or as an async function when it awaits at top level. */
function compile(source) {
  try {
    return { script: new vm.Script(source, { filename: '[eval]' }) };
  } catch (e) {
    if (!(e instanceof SyntaxError) || !/await/.test(source)) throw e;
    try {
      // Top-level await: the body of an async function (declarations stay local to a
      // one-shot exec; a session's go through runSession).
      return { fn: new AsyncFunction('exports', 'require', 'module', '__filename', '__dirname', source) };
    } catch {
      throw e; // the script's own error is the better message
    }
  }
}

// ---- sessions: code evaluated as a console evaluates it ----
// V8's REPL mode (the inspector's Runtime.evaluate with replMode, through an in-process
// session): top-level let/const/class persist and may be declared again, top-level await
// keeps its declarations, the completion value is the result.
let repl = null;
const CAPTURE = 'function () { \'use strict\'; globalThis[Symbol.for(\'forkbox.capture\')](this); }';
const CAPTURE_KEY = Symbol.for('forkbox.capture');

/** The live value behind an inspector RemoteObject (primitives come by value). */
function valueOf(remote) {
  if (!remote || remote.type === 'undefined') return undefined;
  if ('unserializableValue' in remote) {
    const u = remote.unserializableValue;
    return u.endsWith('n') ? BigInt(u.slice(0, -1)) : u === '-0' ? -0 : Number(u);
  }
  if (!remote.objectId) return remote.value;
  let v;
  // the function runs inside post(): the key exists only for that moment
  Object.defineProperty(globalThis, CAPTURE_KEY, { configurable: true, value: (x) => { v = x; } });
  try {
    repl.post('Runtime.callFunctionOn', { objectId: remote.objectId, functionDeclaration: CAPTURE, silent: true }, noop);
  } finally {
    delete globalThis[CAPTURE_KEY];
  }
  return v;
}

/** A compile error as `node -e` prints it: where, the line, a caret, the message. */
function syntaxErrorText(details, code, e) {
  const line = code.split('\n')[details.lineNumber] ?? '';
  return `[eval]:${details.lineNumber + 1}\n${line}\n${' '.repeat(Math.max(0, details.columnNumber))}^\n\n${e && e.stack ? e.stack.split('\n')[0] : String(e)}\n`;
}

function runSession(code, me) {
  if (!repl) {
    repl = new inspector.Session();
    repl.connect();
  }
  repl.post('Runtime.evaluate', { expression: code, replMode: true, awaitPromise: true, objectGroup: 'forkbox', silent: true }, (err, res) => {
    try {
      if (current !== me || me.done) return; // the exec is over (exit, fatal error): dropped
      if (err) { writeAll(2, `forkbox runner: ${err.message}\n`); finish(1); return; }
      if (res.exceptionDetails) {
        const e = valueOf(res.exceptionDetails.exception);
        // a compile error has no frame of the program's own (a runtime SyntaxError does)
        const compileError = e instanceof SyntaxError && !/\n\s+at /.test(trimStack(String(e.stack)));
        if (compileError) { writeAll(2, syntaxErrorText(res.exceptionDetails, code, e)); finish(1); } else onFatal(e);
        return;
      }
      const v = valueOf(res.result);
      if (v !== undefined) me.result = inspect(v);
    } finally {
      repl.post('Runtime.releaseObjectGroup', { objectGroup: 'forkbox' }, noop);
    }
  });
}

function runRequest(payload) {
  let req;
  try {
    req = JSON.parse(payload.toString('utf8'));
    if (!req || typeof req !== 'object' || typeof req.code !== 'string') throw new Error('request needs a string "code"');
    if (req.env != null && (typeof req.env !== 'object' || Object.values(req.env).some((v) => typeof v !== 'string'))) throw new Error('"env" must map strings to strings');
    if (req.cwd != null && typeof req.cwd !== 'string') throw new Error('"cwd" must be a string');
  } catch (e) {
    writeAll(2, `forkbox runner: bad request: ${e.message}\n`);
    current = { code: 1, done: true };
    return;
  }
  const isSession = req.session === true;
  current = { code: 0, done: false, result: undefined, dry: false };
  if (req.code === FORK_WARMUP && !isSession) {
    // the fork's warm-up: a typical program, its output discarded (the answer is real)
    current.dry = sink.on = true;
    req.code = `${DRY_PROGRAMS[0]} // in a fork`; // text new to the compilation cache: the parser runs too
  }
  if (!isSession || req.reseed !== false) reseedMath();
  if (!isSession) {
    for (const k of Object.keys(process.env)) if (!(k in baseEnv)) delete process.env[k];
    Object.assign(process.env, baseEnv);
    try { if (process.cwd() !== baseCwd) process.chdir(baseCwd); } catch { /* keep */ }
  }
  if (req.env) Object.assign(process.env, req.env);
  if (req.cwd) {
    try { process.chdir(req.cwd); } catch (e) { writeAll(2, `forkbox runner: cannot enter ${req.cwd}: ${e.code}\n`); }
  }
  process.exitCode = undefined;
  const me = current;
  const filename = `${process.cwd()}/[eval]`;
  const mod = new Module(filename, null);
  mod.filename = filename;
  mod.paths = Module._nodeModulePaths(process.cwd());
  const req2 = Module.createRequire(filename);
  Object.assign(globalThis, { require: req2, module: mod, exports: mod.exports, __filename: filename, __dirname: process.cwd() });
  if (isSession) {
    runSession(req.code, me);
    return;
  }
  let compiled;
  try {
    compiled = compile(req.code);
  } catch (e) {
    // like `node -e`: the syntax error and where it is, no runner frames
    writeAll(2, (e && e.stack) ? `${e.stack}\n` : `${e}\n`);
    finish(1);
    return;
  }
  try {
    if (compiled.script) {
      compiled.script.runInThisContext({ displayErrors: true });
    } else {
      compiled.fn(mod.exports, req2, mod, filename, process.cwd()).catch(onFatal);
    }
  } catch (e) {
    onFatal(e);
  }
}

const reqBuf = Buffer.allocUnsafe(CHUNK);
function readRequest() {
  const chunks = [];
  const buf = reqBuf;
  for (;;) {
    const n = readSync(ctl, buf, 0, CHUNK, null); // blocks: the snapshot is taken at the first read
    if (n <= 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

/** Writes the answer to `fd`: the control device, or /dev/null for a dry run before the snapshot. */
function answer(fd) {
  const c = current;
  current = null;
  if (c.dry) sink.on = false;
  const code = c.done ? c.code : statusOf(process.exitCode);
  const body = { exit_code: c.dry ? 0 : code };
  if (c.result !== undefined && !c.dry) {
    body.result = c.result.length > RESULT_MAX ? c.result.slice(0, RESULT_MAX) : c.result;
    if (c.result.length > RESULT_MAX) body.result_truncated = true;
    // The same value as the main rich result, as Python's runner gives it (text only: no display() here yet).
    body.results = [{ data: { 'text/plain': body.result }, main: true }];
  }
  writeSync(fd, Buffer.from(JSON.stringify(body), 'utf8'));
}

/** A full garbage collection (gc() from a throwaway context: the program's globals never get
 *  one), so the snapshot holds a compact heap and an empty young generation. */
function collectGarbage() {
  try {
    const v8 = require('v8');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc');
    v8.setFlagsFromString('--no-expose-gc');
    gc();
  } catch { /* no gc: the snapshot is only larger */ }
}

// dry runs before the snapshot, each through the whole exec path (request, timers, answer)
const dryQueue = [];
for (let i = 0; i < DRY_ROUNDS; i++) {
  for (const code of DRY_PROGRAMS) dryQueue.push(JSON.stringify({ code, env: {}, stdin: '' }));
  for (const code of DRY_SESSION_PROGRAMS) dryQueue.push(JSON.stringify({ code, env: {}, stdin: '', session: true }));
}
let dryLeft = dryQueue.length;
function serve() {
  if (current) answer(current.dry && dryLeft >= 0 ? sink.fd : ctl);
  if (dryLeft > 0) {
    const payload = Buffer.from(dryQueue[dryQueue.length - dryLeft--]);
    sink.on = true;
    runRequest(payload);
    current.dry = true;
    rawSetImmediate(noop);
    return;
  }
  if (dryLeft === 0) {
    // Collect, then idle a moment: V8's worker thread finishes sweeping (and any
    // compile job) now, not in every fork.
    dryLeft = -1;
    sink.on = false;
    collectGarbage();
    rawSetTimeout(noop, SETTLE_MS);
    return;
  }
  const payload = readRequest();
  runRequest(payload);
  rawSetImmediate(noop); // the loop must turn again for 'beforeExit' to come back
}
function noop() {}
process.on('beforeExit', serve);
if (Object.keys(preloadFailed).length) writeAll(2, `forkbox runner: preload failed: ${JSON.stringify(preloadFailed)}\n`);
void realExit;
