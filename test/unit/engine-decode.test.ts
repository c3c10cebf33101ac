// engine-decode.test.ts — the engine's pure parts without a VM: request
// validation, the runner payload, response decoding (outcomes, exit codes,
// UTF-8 replacement, truncation flags) and the ABI constants against abi.h.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/lib/paths.js';
import * as abi from '../../src/vmm/abi.js';
import { decodeResponse, encodePayload, validateExec, newExecId } from '../../src/engine/decode.js';
import type { Response } from '../../src/vmm/vmm.js';
import type { ExecRequest } from '../../src/engine/types.js';

const caps = { stdoutCap: 1024, stderrCap: 2048 };
const base: ExecRequest = { code: 'print(1)', language: 'python', timeoutSeconds: 5 };

function resp(over: Partial<Response>): Response {
  return {
    outcome: 'ok', outcomeCode: 0, status: abi.FB_ST_DONE, exitCode: 0, outFlags: 0,
    result: Buffer.alloc(0), stdout: Buffer.alloc(0), stderr: Buffer.alloc(0),
    faultVector: 0, faultError: 0, faultRip: 0, faultCr2: 0, exitReason: 0, ioPort: 0, mmioAddr: 0,
    detail: '', exits: 1, runNs: 1000, arenaUsed: 0, arenaPeak: 0, ...over,
  };
}
const t = { forkMs: 0.1, execMs: 1, totalMs: 1.2 };
const o = { timeoutSeconds: 5, cancelled: false };

test('validateExec accepts a good request and applies default caps', () => {
  assert.deepEqual(validateExec(base, caps), { stdoutCap: 1024, stderrCap: 2048, timeoutMs: 5000 });
  assert.equal(validateExec({ ...base, stdoutCap: 10 }, caps).stdoutCap, 10);
});

test('validateExec: every timeout becomes a finite deadline of whole ms, rounded up', () => {
  // 0.0001 s used to round to 0 ms, which the VMM read as "no deadline".
  for (const [sec, ms] of [[0.0001, 1], [1e-9, 1], [0.0004999, 1], [0.001, 1], [0.0011, 2], [0.5, 500], [3600, 3600_000]] as const)
    assert.equal(validateExec({ ...base, timeoutSeconds: sec }, caps).timeoutMs, ms, `${sec} s`);
  assert.throws(() => validateExec({ ...base, timeoutSeconds: Number.MIN_VALUE * 0 }, caps), (e: { code?: string }) => e.code === 'InvalidRequest');
});

test('the server config takes its largest timeout from the engine', async () => {
  const { MAX_TIMEOUT_SECONDS } = await import('../../src/engine/decode.js');
  const { loadServerConfig: loadConfig } = await import('../../src/server/config.js');
  assert.equal(MAX_TIMEOUT_SECONDS, 3600);
  assert.throws(() => loadConfig(['--max-timeout', String(MAX_TIMEOUT_SECONDS + 1)], {}));
  assert.equal(loadConfig(['--max-timeout', String(MAX_TIMEOUT_SECONDS)], {}).maxTimeoutSeconds, MAX_TIMEOUT_SECONDS);
});

test('validateExec rejects bad requests', () => {
  const bad: unknown[] = [
    { ...base, language: 'ruby' }, { ...base, code: 3 }, { ...base, timeoutSeconds: 0 }, { ...base, timeoutSeconds: NaN },
    { ...base, timeoutSeconds: 1e9 }, { ...base, env: { A: 1 } }, { ...base, env: { 'A=B': 'x' } }, { ...base, env: [] },
    { ...base, stdin: 5 }, { ...base, stdoutCap: -1 }, { ...base, stderrCap: abi.FB_MB_ERR_SIZE + 1 }, null,
  ];
  for (const b of bad) assert.throws(() => validateExec(b as ExecRequest, caps), (e: { code?: string }) => e.code === 'InvalidRequest', JSON.stringify(b));
});

test('encodePayload: the runner JSON, and the size limit', () => {
  const j = JSON.parse(encodePayload({ ...base, env: { A: 'b' }, stdin: 'in' }).toString());
  assert.deepEqual(j, { code: 'print(1)', env: { A: 'b' }, stdin: 'in' });
  assert.throws(() => encodePayload({ ...base, code: 'x'.repeat(abi.FB_MB_REQ_SIZE) }), (e: { code?: string }) => e.code === 'PayloadTooLarge');
});

test('decode: DONE takes the exit code from the runner result, EXIT from the header', () => {
  const r1 = decodeResponse('exec_1', resp({ result: Buffer.from('{"exit_code": 3}'), exitCode: 0, stdout: Buffer.from('hi\n') }), t, o);
  assert.equal(r1.outcome, 'exited');
  assert.equal(r1.exitCode, 3);
  assert.equal(r1.stdout, 'hi\n');
  const r2 = decodeResponse('exec_2', resp({ status: abi.FB_ST_EXIT, exitCode: 7 }), t, o);
  assert.equal(r2.outcome, 'exited');
  assert.equal(r2.exitCode, 7);
  const r3 = decodeResponse('exec_3', resp({ exitCode: 5 }), t, o);
  assert.equal(r3.exitCode, 5);
});

test('decode: timeout, crash, cancel', () => {
  const to = decodeResponse('e', resp({ outcome: 'timeout', outcomeCode: 8, stderr: Buffer.from('partial') }), t, o);
  assert.equal(to.outcome, 'timeout');
  assert.equal(to.exitCode, 124);
  assert.match(to.stderr, /^partial\nforkbox: execution timed out after 5 s\n$/);
  const vmmDetail = 'vector 14 (#PF) at rip 0x401000, address 0x1000, error 0x4';
  const cr = decodeResponse('e', resp({ outcome: 'crash_fault', outcomeCode: 1, faultVector: 14, faultCr2: 0x1000, faultRip: 0x401000, detail: vmmDetail }), t, o);
  assert.equal(cr.outcome, 'crashed');
  assert.equal(cr.exitCode, 137);
  assert.equal(cr.crash, vmmDetail, "the VMM's detail line, not repeated");
  const bare = decodeResponse('e', resp({ outcome: 'crash_fault', outcomeCode: 1, faultVector: 14, faultCr2: 0x1000, faultRip: 0x401000, detail: '' }), t, o);
  assert.match(bare.crash ?? '', /^crash_fault: vector 14 .*rip 0x401000 cr2 0x1000$/);
  const err = decodeResponse('e', resp({ status: abi.FB_ST_ERROR, result: Buffer.from('runtime: boom') }), t, o);
  assert.equal(err.outcome, 'crashed');
  assert.match(err.crash ?? '', /boom/);
  const killed = resp({ outcome: 'killed', outcomeCode: 9 });
  assert.equal(decodeResponse('e', killed, t, { ...o, cancelled: true }).outcome, 'cancelled');
  assert.equal(decodeResponse('e', killed, t, o).outcome, 'crashed');
});

test('decode: invalid UTF-8 is replaced, truncation flags are reported, times are kept', () => {
  const r = decodeResponse('e', resp({ stdout: Buffer.from([0x61, 0xff, 0x62]), outFlags: abi.FB_OUT_TRUNCATED | abi.FB_ERR_TRUNCATED }), t, o);
  assert.equal(r.stdout, 'a\ufffdb');
  assert.equal(r.stdoutTruncated, true);
  assert.equal(r.stderrTruncated, true);
  assert.equal(r.forkTimeMs, 0.1);
  assert.equal(r.totalTimeMs, 1.2);
});

test('decode: the caller\'s caps are enforced, 0 included', () => {
  const r = decodeResponse('e', resp({ stdout: Buffer.from('abcdef'), stderr: Buffer.from('xy') }), t, { ...o, stdoutCap: 3, stderrCap: 0 });
  assert.equal(r.stdout, 'abc');
  assert.equal(r.stdoutTruncated, true);
  assert.equal(r.stderr, '');
  assert.equal(r.stderrTruncated, true);
  const all = decodeResponse('e', resp({ stdout: Buffer.from('abc') }), t, { ...o, stdoutCap: 3 });
  assert.equal(all.stdoutTruncated, false);
});

test('exec ids are unique and prefixed', () => {
  const ids = new Set(Array.from({ length: 1000 }, newExecId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^exec_[A-Za-z0-9_-]{16}$/);
});

test('bootArgs: argv, "", envp, ""', () => {
  assert.equal(abi.bootArgs(['py', 'r.py'], ['A=1']).toString(), 'py\0r.py\0\0A=1\0\0');
  assert.throws(() => abi.bootArgs(['x'.repeat(abi.FB_BOOT_ARGS_MAX)], []));
});

test('abi.ts matches native/include/abi.h', () => {
  const h = readFileSync(join(repoRoot, 'native', 'include', 'abi.h'), 'utf8');
  const def = (name: string): number => {
    const m = new RegExp(`#define\\s+${name}\\s+\\(?([0-9xXa-fA-F]+)u?(?:ll|ull)?`).exec(h);
    assert.ok(m, `${name} defined in abi.h`);
    return Number(m[1]);
  };
  for (const name of ['FB_ABI_VERSION', 'FB_REQ_NONE', 'FB_REQ_EXEC', 'FB_REQ_ECHO', 'FB_ST_READY', 'FB_ST_DONE', 'FB_ST_EXIT',
    'FB_ST_ERROR', 'FB_OUT_TRUNCATED', 'FB_ERR_TRUNCATED', 'FB_RESULT_TRUNCATED', 'FB_MB_RESULT_SIZE', 'FB_MB_REQ_SIZE',
    'FB_MB_OUT_SIZE', 'FB_MB_ERR_SIZE', 'FB_ENTROPY_SIZE', 'FB_HUGE_PAGE_SIZE'] as const) {
    assert.equal((abi as Record<string, unknown>)[name], def(name), name);
  }
});

test('outcome codes match enum vmm_outcome in vmm.h', async () => {
  const h = readFileSync(join(repoRoot, 'native', 'include', 'vmm.h'), 'utf8');
  const body = /enum vmm_outcome \{([\s\S]*?)\};/.exec(h)?.[1] ?? '';
  const names = [...body.matchAll(/^\s*(VMM_[A-Z_]+)/gm)].map((m) => m[1]);
  const d = await import('../../src/engine/decode.js');
  assert.equal(names.indexOf('VMM_OK'), d.VMM_OK);
  assert.equal(names.indexOf('VMM_TIMEOUT'), d.VMM_TIMEOUT);
  assert.equal(names.indexOf('VMM_KILLED'), d.VMM_KILLED);
});
