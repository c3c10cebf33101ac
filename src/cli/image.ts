// image.ts — `forkbox image`: build a recipe's image (Debian packages →
// rewritten tree → image file), list an image's files, show a build's
// syscall-rewrite report. Output to stdout; progress to stderr.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, imagesDir, readBuilt } from '../image/build.js';
import { ImageReader, entryKind, type ImageEntry } from '../image/reader.js';
import { imageRecipeOf } from '../template/recipe.js';
import { SHIPPED_TEMPLATES, shippedTemplate } from '../template/shipped.js';

const USAGE = `usage: forkbox image <subcommand>

  build [RECIPE] [--json]     build (or reuse) the image for RECIPE (default: python)
  ls IMAGE|KEY [PATH]         list a directory of an image (default: /), or show one entry
  report KEY [--json]         the syscall-rewrite report of a built image

recipes: ${SHIPPED_TEMPLATES.map((t) => t.name).join(', ')} (the shipped templates' images)
`;

const out = (s: string): void => { process.stdout.write(s); };

async function build(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const names = args.filter((a) => !a.startsWith('--'));
  if (names.length > 1) { process.stderr.write(USAGE); return 2; }
  const started = Date.now();
  const name = names[0] ?? 'python';
  const shipped = shippedTemplate(name);
  const img = await buildImage(shipped ? imageRecipeOf(shipped) : name, { onProgress: (m) => process.stderr.write(`image: ${m}\n`) });
  const seconds = (Date.now() - started) / 1000;
  const m = img.manifest;
  if (json) {
    out(JSON.stringify({ key: img.key, imagePath: img.imagePath, cached: img.cached, seconds, argv: img.argv, env: img.env,
      image: m.image, rewrite: m.rewrite, packages: m.packages.map((p) => `${p.name}=${p.version}`) }, null, 2) + '\n');
  } else {
    out(`${img.imagePath}\n`);
    out(`key ${img.key}${img.cached ? ' (cached)' : ''}, ${(m.image.size / 1048576).toFixed(1)} MiB, ${m.image.files} files, `
      + `${m.image.dirs} dirs, ${m.image.symlinks} symlinks, ${m.packages.length} packages, ${seconds.toFixed(1)} s\n`);
    out(`syscall sites: ${m.rewrite.sites}, rewritten ${m.rewrite.rewritten}, refused ${m.rewrite.refused}, in data ${m.rewrite.data}\n`);
  }
  return 0;
}

function describe(img: ImageReader, e: ImageEntry, name: string): string {
  const kind = entryKind(e);
  const mode = (e.mode & 0o7777).toString(8).padStart(4, '0');
  if (kind === 'dir') return `d ${mode} ${String(e.childCount).padStart(10)} ${name}/\n`;
  if (kind === 'symlink') return `l ${mode} ${String(e.size).padStart(10)} ${name} -> ${img.data(e).toString()}\n`;
  return `- ${mode} ${String(e.size).padStart(10)} ${name}\n`;
}

function ls(args: string[]): number {
  const [target, path = '/'] = args;
  if (!target) { process.stderr.write(USAGE); return 2; }
  const file = existsSync(target) ? target : join(imagesDir(), target, 'image.fbimg');
  if (!existsSync(file)) { process.stderr.write(`forkbox image ls: no image file or built key "${target}"\n`); return 1; }
  const img = new ImageReader(file);
  try {
    const e = img.lookup(path, true);
    if (!e) { process.stderr.write(`forkbox image ls: ${path}: not in the image\n`); return 1; }
    if (entryKind(e) !== 'dir') out(describe(img, img.lookup(path, false)!, path));
    else for (const c of img.children(e)) out(describe(img, c, c.name.toString()));
    return 0;
  } finally {
    img.close();
  }
}

async function report(args: string[]): Promise<number> {
  const key = args.find((a) => !a.startsWith('--'));
  if (!key) { process.stderr.write(USAGE); return 2; }
  const built = await readBuilt(key);
  if (!built) { process.stderr.write(`forkbox image report: no complete image "${key}" in ${imagesDir()}\n`); return 1; }
  if (args.includes('--json')) { out(JSON.stringify(built.report, null, 2) + '\n'); return 0; }
  const r = built.report;
  out(`rewriter v${r.rewriterVersion}: ${r.elfFiles} ELF files, ${r.filesWithSites} with syscall instructions; `
    + `${r.totalSites} sites, ${r.totalRewritten} rewritten, ${r.totalRefused} refused, ${r.totalData} in data\n`);
  for (const f of r.files) {
    out(`${f.path}: ${f.sites} sites, ${f.rewritten.length} rewritten\n`);
    for (const x of f.refused) {
      const acc = (x as { accepted?: string }).accepted;
      out(`  refused ${x.address}${x.syscall !== undefined ? ` (syscall ${x.syscall})` : ''}: ${x.reason}${acc ? `\n    accepted: ${acc}` : ''}\n`);
    }
    for (const x of f.data) out(`  data ${x.address}: ${x.reason}\n`);
  }
  return 0;
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case 'build': return await build(rest);
      case 'ls': return ls(rest);
      case 'report': return await report(rest);
      case undefined: case '--help': case '-h': case 'help':
        out(USAGE);
        return sub ? 0 : 2;
      default:
        process.stderr.write(`forkbox image: unknown subcommand "${sub}"\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    process.stderr.write(`forkbox image ${sub}: ${(e as Error).message}\n`);
    return 1;
  }
}
