// template.ts — `forkbox template build [python] [--force]` builds (or
// reuses) a template in the cache; `forkbox template ls` lists cached ones.
import { parseArgs } from 'node:util';
import { setWorkers, probe } from '../vmm/vmm.js';
import { TEMPLATE_NAMES, buildTemplate, listTemplates, type TemplateName } from '../template/build.js';

const USAGE = 'usage: forkbox template build [python] [--force] [--ram MiB]\n       forkbox template ls [--json]\n';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { force: { type: 'boolean' }, json: { type: 'boolean' }, ram: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [sub, name = 'python', ...extra] = positionals;
  if (values.help || !sub) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (sub === 'ls') {
    const list = await listTemplates(undefined, { verify: false });
    if (values.json) {
      process.stdout.write(JSON.stringify(list.map((t) => t.manifest), null, 2) + '\n');
    } else if (!list.length) {
      process.stdout.write('no templates built (forkbox template build python)\n');
    } else {
      for (const t of list) {
        const m = t.manifest;
        process.stdout.write(`${m.name.padEnd(8)} ${m.key.slice(0, 16)}  ${m.created}  memory ${(m.sizes.memory / 2 ** 20).toFixed(0)} MiB` +
          `  boot ${m.bootMs} ms  ${t.dir}\n`);
      }
    }
    return 0;
  }
  if (sub !== 'build' || extra.length) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (!(TEMPLATE_NAMES as readonly string[]).includes(name)) {
    process.stderr.write(`forkbox template: unknown template "${name}" (known: ${TEMPLATE_NAMES.join(', ')})\n`);
    return 2;
  }
  const p = probe();
  if (!p.available) {
    process.stderr.write(`forkbox template: KVM is not available: ${p.reason}\n`);
    return 1;
  }
  const ramSizeMb = values.ram ? Number(values.ram) : undefined;
  if (ramSizeMb !== undefined && !Number.isInteger(ramSizeMb)) {
    process.stderr.write('forkbox template: --ram takes MiB\n');
    return 2;
  }
  setWorkers(1);
  try {
    const t = await buildTemplate(name as TemplateName, {
      force: !!values.force, ...(ramSizeMb ? { ramSizeMb } : {}),
      onProgress: (line) => process.stderr.write(`forkbox: ${line}\n`),
    });
    process.stdout.write(`${t.built ? 'built' : 'cached'} ${t.name} template ${t.key.slice(0, 16)} at ${t.dir}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`forkbox template: ${(e as Error).message}\n`);
    return 1;
  }
}
