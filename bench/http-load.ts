// http-load.ts — load benchmark of the HTTP API: N concurrent keep-alive
// clients (default 200) POST /v1/exec `print(1+1)` for D seconds (default 20)
// and the run prints requests, errors by kind, latency p50/p90/p99 and req/s,
// beside the server-reported fork/exec/total times. Starts its own
// `forkbox serve` child (rate limit off, queue ≥ clients, per-key caps as wide
// as the global ones: every client here is one key) unless --url is given;
// then by default twice, with fork recycling off (FORKBOX_RECYCLE=0, the
// previous behaviour) and on, and prints the ratio (--recycle on|off|both).
// A benchmark, not a test: it never fails on a number.
//   node dist/bench/http-load.js [--url URL] [--key KEY] [--clients 200] [--duration 20] [--recycle both] [--json] [--out FILE]
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../src/lib/paths.js';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' }, key: { type: 'string' }, clients: { type: 'string', default: '200' },
    duration: { type: 'string', default: '20' }, code: { type: 'string', default: 'print(1+1)' },
    json: { type: 'boolean', default: false }, out: { type: 'string' }, recycle: { type: 'string', default: 'both' },
  },
});
const clients = Number(opt.clients);
const durationS = Number(opt.duration);

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const r2 = (n: number): number => Math.round(n * 100) / 100;

async function startServer(recycle: boolean): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(repoRoot, 'dist/src/cli/main.js'), 'serve', '--port', '0'], {
    env: { ...process.env, FORKBOX_RECYCLE: recycle ? '1' : '0', FORKBOX_RATE_LIMIT: '0', FORKBOX_MAX_QUEUE: String(Math.max(512, clients * 2)),
      FORKBOX_MAX_QUEUED_PER_KEY: String(Math.max(512, clients * 2)), FORKBOX_MAX_RUNNING_PER_KEY: String(Math.max(2, availableParallelism() * 2)),
      FORKBOX_MAX_CONNECTIONS: String(Math.max(256, clients + 64)), FORKBOX_LOG_LEVEL: process.env.FORKBOX_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /forkbox listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (c) => reject(new Error(`forkbox serve exited ${c}`)));
  });
  return { url, child };
}

interface Reply { status: number; body: string }

function post(agent: Agent, url: URL, body: string, key?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    if (key) headers.authorization = `Bearer ${key}`;
    const req = request({ agent, host: url.hostname, port: url.port, path: '/v1/exec', method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function runOnce(recycle: boolean | null): Promise<Record<string, unknown> & { reqPerS: number; latencyMs: Record<string, number>; serverMs: Record<string, number>; errors: number; errorsByKind: Record<string, number>; requests: number; ok: number; durationS: number; cpus: number }> {
  let child: ChildProcess | undefined;
  let url = opt.url;
  if (!url) {
    process.stderr.write(`starting forkbox serve, recycling ${recycle ? 'on' : 'off'} (builds the template on first use)…\n`);
    ({ url, child } = await startServer(recycle !== false));
  }
  const target = new URL(url);
  const key = opt.key ?? process.env.FORKBOX_API_KEY;
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const body = JSON.stringify({ code: opt.code, timeout_seconds: 30 });

  // Warm-up: one request per 10 clients, not counted.
  await Promise.all(Array.from({ length: Math.max(1, clients / 10) }, () => post(agent, target, body, key).catch(() => undefined)));

  const lat: number[] = [];
  const fork: number[] = [], exec: number[] = [], total: number[] = [];
  const errors: Record<string, number> = {};
  let ok = 0;
  const t0 = performance.now();
  const end = t0 + durationS * 1000;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      const s = performance.now();
      try {
        const r = await post(agent, target, body, key);
        const ms = performance.now() - s;
        if (r.status === 200) {
          const j = JSON.parse(r.body) as { exit_code: number; stdout: string; fork_time_ms: number; exec_time_ms: number; total_time_ms: number };
          if (j.exit_code === 0 && j.stdout === '2\n' || opt.code !== 'print(1+1)') {
            ok++;
            lat.push(ms);
            fork.push(j.fork_time_ms); exec.push(j.exec_time_ms); total.push(j.total_time_ms);
          } else {
            errors[`exit ${j.exit_code}`] = (errors[`exit ${j.exit_code}`] ?? 0) + 1;
          }
        } else {
          let code = String(r.status);
          try { code += ' ' + (JSON.parse(r.body) as { code: string }).code; } catch { /* not an envelope */ }
          errors[code] = (errors[code] ?? 0) + 1;
        }
      } catch (e) {
        const k = (e as NodeJS.ErrnoException).code ?? 'socket error';
        errors[k] = (errors[k] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  for (const a of [lat, fork, exec, total]) a.sort((x, y) => x - y);
  const nErr = Object.values(errors).reduce((a, b) => a + b, 0);
  const result = {
    bench: 'http-load', url, clients, recycle, durationS: r2(elapsed), code: opt.code, cpus: availableParallelism(),
    requests: ok + nErr, ok, errors: nErr, errorsByKind: errors, reqPerS: r2(ok / elapsed),
    latencyMs: { p50: r2(pct(lat, 50)), p90: r2(pct(lat, 90)), p99: r2(pct(lat, 99)), max: r2(lat[lat.length - 1] ?? NaN) },
    serverMs: {
      forkP50: r2(pct(fork, 50)), forkP99: r2(pct(fork, 99)),
      execP50: r2(pct(exec, 50)), execP99: r2(pct(exec, 99)),
      totalP50: r2(pct(total, 50)), totalP99: r2(pct(total, 99)),
    },
  };
  if (child) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  return result;
}

function print(result: Awaited<ReturnType<typeof runOnce>>): void {
  const l = result.latencyMs, s = result.serverMs;
  const rec = result.recycle === null ? '' : result.recycle ? ', recycling on' : ', recycling off';
  process.stdout.write([
    `http load: ${clients} clients × ${result.durationS} s, POST /v1/exec ${JSON.stringify(opt.code)} (${result.cpus} CPUs${rec})`,
    `  requests ${result.requests}   ok ${result.ok}   errors ${result.errors}${result.errors ? ' ' + JSON.stringify(result.errorsByKind) : ''}`,
    `  throughput ${result.reqPerS} req/s`,
    `  latency (client) p50 ${l.p50} ms   p90 ${l.p90} ms   p99 ${l.p99} ms   max ${l.max} ms`,
    `  server   fork p50 ${s.forkP50} / p99 ${s.forkP99} ms   exec p50 ${s.execP50} / p99 ${s.execP99} ms   total p50 ${s.totalP50} / p99 ${s.totalP99} ms`,
    '',
  ].join('\n'));
}

async function main(): Promise<void> {
  const mode = opt.url ? 'server' : opt.recycle;
  if (!['server', 'on', 'off', 'both'].includes(mode!)) throw new Error('--recycle takes on, off or both');
  const runs = mode === 'server' ? [null] : mode === 'both' ? [false, true] : [mode === 'on'];
  const results = [];
  for (const r of runs) {
    const res = await runOnce(r);
    results.push(res);
    if (!opt.json) print(res);
  }
  const out: Record<string, unknown> = results.length === 1 ? results[0]! : { bench: 'http-load', runs: results };
  if (results.length === 2) {
    const [off, on] = results as [Awaited<ReturnType<typeof runOnce>>, Awaited<ReturnType<typeof runOnce>>];
    out.recycleOverBaselineReqPerS = r2(on.reqPerS / off.reqPerS);
    if (!opt.json) {
      process.stdout.write(`recycling on vs off (same run): ${out.recycleOverBaselineReqPerS}× req/s (target ≥3×), client p99 ${on.latencyMs.p99} vs ${off.latencyMs.p99} ms, errors ${on.errors} vs ${off.errors}\n`);
    }
  }
  if (opt.out) writeFileSync(opt.out, JSON.stringify(out, null, 2) + '\n');
  if (opt.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`http-load: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
