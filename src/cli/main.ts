#!/usr/bin/env node
// main.ts — the `forkbox` command: dispatches to one module per command
// (serve, exec, session, sync, bench, template, image, probe, conformance, mcp); each exports
// run(args): Promise<number>, the process exit code.
const USAGE = `usage: forkbox <command> [options]

commands:
  serve                       run the HTTP API (forkbox serve --help)
  exec [--lang python] [--timeout S] [--times] CODE|-
                              run code in a fresh fork; '-' reads the code from stdin
  session create|exec|ls|rm|fork|pause ...
                              sessions on a running server (forkbox session --help)
  sync LOCAL_DIR SESSION:/path [--delete]
  sync SESSION:/path LOCAL_DIR [--delete]
                              copy a directory to or from a session (--delete mirrors)
  template build [python] [--force]
  template ls                 build / list cached templates
  image ...                   build / inspect read-only images (forkbox image --help)
  bench fork|exec [--json] [-n N] [--out FILE]
  bench http [--clients N] [--duration S]
                              fork, exec and HTTP load benchmarks
  probe                       check that this machine can run forkbox VMs
  conformance python [--modules a,b] [--json FILE] [--jobs N] [--timeout S]
                              CPython's own tests in forks vs the host (docs/conformance.md)
  mcp [--embedded]            serve the forkbox tools over MCP on stdio (forkbox mcp --help)
`;

type Command = { run(args: string[]): Promise<number> };
const commands: Record<string, () => Promise<Command>> = {
  serve: () => import('./serve.js'),
  exec: () => import('./exec.js'),
  session: () => import('./session.js'),
  sync: () => import('./sync.js'),
  bench: () => import('./bench.js'),
  template: () => import('./template.js'),
  image: () => import('./image.js'),
  probe: () => import('./probe.js'),
  conformance: () => import('./conformance.js'),
  mcp: () => import('./mcp.js'),
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd ? 0 : 2;
  }
  const load = commands[cmd];
  if (!load) {
    process.stderr.write(`forkbox: unknown command "${cmd}"\n\n${USAGE}`);
    return 2;
  }
  let mod: Command;
  try {
    mod = await load();
  } catch (e) {
    process.stderr.write(`forkbox ${cmd}: not available in this build (${(e as Error).message})\n`);
    return 1;
  }
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    process.stderr.write(`forkbox: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
