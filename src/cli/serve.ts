// serve.ts — `forkbox serve`: resolve the configuration (flags, then env),
// load API keys, create the engine (building the python template on first
// start, progress on stderr), wait until the pool is warm, then listen. On
// SIGINT/SIGTERM: stop admitting, let in-flight execs finish within the grace
// period (then cancel them), release every VM, exit 0; a second one exits now.
// SIGHUP re-reads the API key file.
import { isIP } from 'node:net';
import { createEngine, type EngineOptions } from '../engine/index.js';
import { log } from '../lib/log.js';
import { buildServer } from '../server/app.js';
import { loadKeyFile, type KeyEntry } from '../server/auth.js';
import { ConfigError, loadServerConfig, usage, type ServerConfig } from '../server/config.js';

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** "python-data=4,javascript=0" (as a list) → { "python-data": 4, javascript: 0 }. */
export function parseTemplateWarmForks(entries: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of entries) {
    const m = /^([a-z][a-z0-9-]{0,47})=(\d{1,4})$/.exec(e.trim());
    if (!m) throw new RangeError(`--template-warm-forks: "${e}" is not NAME=N`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** The engine options a server configuration asks for (unset: engine defaults). */
export function engineOptions(cfg: ServerConfig): EngineOptions {
  const o: EngineOptions = {
    buildIfMissing: true,
    templates: 'all',
    onProgress: (line: string) => process.stderr.write(`forkbox: ${line}\n`),
  };
  if (cfg.poolSize !== undefined) o.poolSize = cfg.poolSize;
  if (cfg.warmForks !== undefined) o.warmForks = cfg.warmForks;
  if (cfg.templateWarmForks.length) o.templateWarmForks = parseTemplateWarmForks(cfg.templateWarmForks);
  o.recycle = cfg.recycle;
  if (cfg.workers !== undefined) o.workers = cfg.workers;
  if (cfg.memLimitMb !== undefined) o.memLimitMb = cfg.memLimitMb;
  o.logOutput = cfg.logOutput;
  // The server's session options are the engine's limits (one source: the server config).
  o.sessions = {
    defaultTimeoutSeconds: cfg.sessionTimeoutSeconds, maxTimeoutSeconds: cfg.maxSessionTimeoutSeconds,
    defaultIdleSeconds: cfg.sessionIdleTimeoutSeconds, maxIdleSeconds: cfg.maxSessionIdleTimeoutSeconds,
    maxForkCount: cfg.maxForkCount, ...(cfg.maxSessionsPerKey > 0 ? { maxPerOwner: cfg.maxSessionsPerKey } : { maxPerOwner: 1_000_000 }),
  };
  if (cfg.stdoutCapBytes !== undefined) o.stdoutCap = cfg.stdoutCapBytes;
  if (cfg.stderrCapBytes !== undefined) o.stderrCap = cfg.stderrCapBytes;
  return o;
}

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  let cfg: ServerConfig;
  let keys: KeyEntry[] = [];
  try {
    cfg = loadServerConfig(args);
    if (cfg.apiKeysFile !== undefined) keys = loadKeyFile(cfg.apiKeysFile);
  } catch (e) {
    process.stderr.write(`forkbox serve: ${(e as Error).message}\n${e instanceof ConfigError ? 'see forkbox serve --help\n' : ''}`);
    return 2;
  }
  if (keys.length === 0) {
    log.warn('auth.disabled', {
      message: 'NO API KEYS CONFIGURED: authentication is OFF and anyone who can reach this port can run code. Set FORKBOX_API_KEYS_FILE.',
      host: cfg.host,
    });
  } else {
    log.info('auth.enabled', { keys: keys.length, keyIds: keys.map((k) => k.id) });
  }
  if (!isLoopback(cfg.host)) {
    log.warn('server.public_bind', { host: cfg.host, auth: keys.length > 0, message: 'binding a non-loopback address' });
  }

  // Signals are handled from the start so a Ctrl-C during the template build is clean.
  let stop!: (sig: string) => void;
  const stopped = new Promise<string>((resolve) => { stop = resolve; });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn('server.forced_exit', { signal: sig });
      process.exit(130);
    }
    stop(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const unhook = (): void => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); };

  let engine: Awaited<ReturnType<typeof createEngine>> | undefined;
  try {
    const t0 = performance.now();
    engine = await createEngine(engineOptions(cfg));
    const early = await Promise.race([engine.ready().then(() => undefined), stopped]);
    if (early !== undefined) {
      log.info('server.shutdown', { signal: early, phase: 'startup' });
      await engine.close(0);
      unhook();
      return 0;
    }
    log.info('engine.ready', { ms: Math.round(performance.now() - t0), pool: engine.health().pool });
  } catch (e) {
    process.stderr.write(`forkbox serve: engine failed to start: ${(e as Error).message}\n`);
    log.error('engine.start_failed', { err: e });
    if (engine) await engine.close(0).catch(() => undefined);
    unhook();
    return 1;
  }

  const server = buildServer({ engine, config: cfg, keys });
  try {
    await server.app.listen({ host: cfg.host, port: cfg.port });
  } catch (e) {
    process.stderr.write(`forkbox serve: cannot listen on ${cfg.host}:${cfg.port}: ${(e as Error).message}\n`);
    await engine.close(0).catch(() => undefined);
    unhook();
    return 1;
  }
  const addr = server.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
  const hostPart = isIP(cfg.host) === 6 ? `[${cfg.host}]` : cfg.host;
  log.info('server.listening', { url: `http://${hostPart}:${port}`, auth: keys.length > 0 });
  process.stdout.write(`forkbox listening on http://${hostPart}:${port}\n`);

  // SIGHUP re-reads the key file (add or revoke keys without a restart); a bad file keeps the old keys.
  const onHup = (): void => {
    if (cfg.apiKeysFile === undefined) {
      log.warn('auth.reload_skipped', { message: 'no FORKBOX_API_KEYS_FILE configured' });
      return;
    }
    try {
      const next = loadKeyFile(cfg.apiKeysFile);
      server.ctx.auth.replace(next);
      log.info('auth.reloaded', { keys: next.length, keyIds: next.map((k) => k.id) });
    } catch (e) {
      log.error('auth.reload_failed', { err: e, message: 'keeping the previous keys' });
    }
  };
  process.on('SIGHUP', onHup);

  const sig = await stopped;
  process.off('SIGHUP', onHup);
  log.info('server.shutdown', { signal: sig, graceMs: cfg.shutdownGraceMs, inFlight: server.ctx.admission.inFlight });
  server.beginShutdown();
  // Connections still open well past the grace period are cut, so shutdown always ends.
  const cut = setTimeout(() => server.app.server.closeAllConnections(), cfg.shutdownGraceMs + 5000);
  await Promise.all([engine.close(cfg.shutdownGraceMs), server.app.close()]);
  clearTimeout(cut);
  const h = engine.health();
  log.info('server.stopped', { liveForks: h.liveForks });
  unhook();
  return 0;
}
