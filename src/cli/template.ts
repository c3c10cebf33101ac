// template.ts — `forkbox template build FILE|NAME` builds (or reuses) a
// template in the cache: a shipped one by name, or a recipe file (JSON/YAML,
// docs/templates.md; its lock file is written next to it) with a report of
// the ELF files rewritten and any refused syscall sites. `forkbox template ls`
// lists the cache; `forkbox template rm NAME` removes a template's builds.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { setWorkers, probe } from '../vmm/vmm.js';
import { TEMPLATE_NAMES, buildTemplate, listTemplates, type TemplateInfo } from '../template/build.js';
import { lockPathOf, readRecipeFile, type TemplateRecipe } from '../template/recipe.js';
import { shippedTemplate } from '../template/shipped.js';

const USAGE = `usage: forkbox template build FILE|NAME [--force] [--ram MiB] [--json]
       forkbox template ls [--json]
       forkbox template rm NAME

shipped templates: ${TEMPLATE_NAMES.join(', ')}; FILE is a recipe (.json, .yaml, .yml; see docs/templates.md)
`;

const out = (s: string): void => { process.stdout.write(s); };
const err = (s: string): void => { process.stderr.write(s); };

function describe(t: TemplateInfo): string {
  const m = t.manifest;
  const base = m.recipe?.base ?? (m.name === 'javascript' ? 'javascript' : 'python');
  return `${m.name.padEnd(12)} ${base.padEnd(10)} ${m.key.slice(0, 16)}  ${m.created}  memory ${(m.sizes.memory / 2 ** 20).toFixed(0)} MiB` +
    `  boot ${m.bootMs} ms  ${m.recipe ? 'recipe' : 'shipped'}  ${t.dir}\n`;
}

async function build(target: string, values: { force?: boolean; ram?: string; json?: boolean }): Promise<number> {
  let recipe: TemplateRecipe | undefined = shippedTemplate(target);
  let lockPath: string | undefined;
  const looksLikeFile = /[/.]/.test(target) || existsSync(target);
  if (!recipe || looksLikeFile) {
    if (!looksLikeFile) {
      err(`forkbox template: unknown template "${target}" (shipped: ${TEMPLATE_NAMES.join(', ')}; or give a recipe file)\n`);
      return 2;
    }
    try {
      recipe = readRecipeFile(target);
    } catch (e) {
      err(`forkbox template: ${(e as Error).message}\n`);
      return 2;
    }
    if (shippedTemplate(recipe.name)) {
      err(`forkbox template: recipe ${target}: name: "${recipe.name}" is a shipped template; choose another name\n`);
      return 2;
    }
    lockPath = lockPathOf(target);
  }
  const p = probe();
  if (!p.available) {
    err(`forkbox template: KVM is not available: ${p.reason}\n`);
    return 1;
  }
  const ramSizeMb = values.ram ? Number(values.ram) : undefined;
  if (ramSizeMb !== undefined && !Number.isInteger(ramSizeMb)) {
    err('forkbox template: --ram takes MiB\n');
    return 2;
  }
  setWorkers(1);
  try {
    const t = await buildTemplate(recipe, {
      force: !!values.force, ...(ramSizeMb ? { ramSizeMb } : {}), ...(lockPath ? { lockPath } : {}),
      onProgress: (line) => err(`forkbox: ${line}\n`),
    });
    const r = t.manifest.report;
    if (values.json) {
      out(JSON.stringify({ name: t.name, key: t.key, built: t.built, dir: t.dir, base: recipe.base, ...(lockPath ? { lock: lockPath } : {}),
        report: r ?? null }, null, 2) + '\n');
      return 0;
    }
    out(`${t.built ? 'built' : 'cached'} ${t.name} template ${t.key.slice(0, 16)} at ${t.dir}\n`);
    if (r) {
      out(`${r.packages} packages, image ${(r.imageBytes / 2 ** 20).toFixed(1)} MiB${lockPath ? `, versions pinned in ${lockPath}` : ''}\n`);
      out(`ELF files with rewritten syscall sites: ${Object.keys(r.rewritten).length}\n`);
      for (const [f, n] of Object.entries(r.rewritten)) out(`  ${f}: ${n}\n`);
      if (r.refused.length) {
        out(`refused syscall sites (a sandbox that reaches one crashes; see docs/syscall-rewrite.md): ${r.refused.length}\n`);
        for (const s of r.refused) out(`  ${s}\n`);
      }
    }
    return 0;
  } catch (e) {
    err(`forkbox template: ${(e as Error).message}\n`);
    return 1;
  }
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { force: { type: 'boolean' }, json: { type: 'boolean' }, ram: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [sub, name, ...extra] = positionals;
  if (values.help || !sub) {
    (values.help ? out : err)(USAGE);
    return values.help ? 0 : 2;
  }
  if (sub === 'ls') {
    const list = await listTemplates(undefined, { verify: false });
    if (values.json) out(JSON.stringify(list.map((t) => ({ ...t.manifest, recipe: t.manifest.recipe ? { ...t.manifest.recipe, files: t.manifest.recipe.files.map((f) => f.path) } : undefined })), null, 2) + '\n');
    else if (!list.length) out('no templates built (forkbox template build python)\n');
    else for (const t of list) out(describe(t));
    return 0;
  }
  if (sub === 'rm') {
    if (!name || extra.length) { err(USAGE); return 2; }
    const list = (await listTemplates(undefined, { verify: false })).filter((t) => t.name === name);
    if (!list.length) {
      err(`forkbox template: no template "${name}" in the cache\n`);
      return 1;
    }
    for (const t of list) await rm(t.dir, { recursive: true, force: true });
    out(`removed ${list.length} build(s) of ${name}${shippedTemplate(name) ? ' (a shipped template: the next serve builds it again)' : ''}\n`);
    return 0;
  }
  if (sub !== 'build' || extra.length) {
    err(USAGE);
    return 2;
  }
  return build(name ?? 'python', values);
}
