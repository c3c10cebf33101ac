// prune.ts — removes what no sandboxed program reads: documentation (except
// copyright files), man/info pages, locales, lintian overrides, header files,
// static libraries, and Python test suites and GUI/installer packages. Every
// rule is a pure function of the image path, so the tests can check it alone.
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

const PY = 'usr/lib/python3.11';
const DIST = 'usr/lib/python3/dist-packages';

/** Whole directories dropped (image paths without the leading '/'). */
const DROP_DIRS: RegExp[] = [
  /^usr\/share\/(man|info|locale|lintian|doc-base|bug|bash-completion|menu|pixmaps|applications)$/,
  /^usr\/include$/,
  new RegExp(`^${PY}/(idlelib|tkinter|turtledemo|ensurepip|test|lib2to3/tests|venv/scripts/nt)$`),
  new RegExp(`^${PY}/[^/]+/(test|tests|idle_test)$`),
  new RegExp(`^${DIST}/[^/]+/(.+/)?tests$`),
];

/** Single files dropped. */
const DROP_FILES: RegExp[] = [
  /\.(a|h|hpp|la|pc)$/,
  new RegExp(`^${PY}/turtle\\.py$`),
];

/** What to keep under /usr/share/doc: licences travel with the binaries. */
const DOC = /^usr\/share\/doc\//;
const KEEP_DOC = /^usr\/share\/doc\/[^/]+\/copyright$/;

export function pruneDir(rel: string): boolean {
  return DROP_DIRS.some((r) => r.test(rel));
}

export function pruneFile(rel: string): boolean {
  if (DOC.test(rel)) return !KEEP_DOC.test(rel);
  return DROP_FILES.some((r) => r.test(rel));
}

export interface PruneStats { dirs: number; files: number; bytes: number }

/** Prunes the staging tree in place; empty directories left under /usr/share/doc are removed too. */
export async function pruneTree(rootfs: string): Promise<PruneStats> {
  const stats: PruneStats = { dirs: 0, files: 0, bytes: 0 };
  const visit = async (rel: string): Promise<boolean> => {
    const abs = join(rootfs, rel);
    let empty = true;
    for (const name of await readdir(abs)) {
      const childRel = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(rootfs, childRel));
      if (st.isDirectory()) {
        if (pruneDir(childRel)) {
          await rm(join(rootfs, childRel), { recursive: true });
          stats.dirs++;
        } else if ((await visit(childRel)) && DOC.test(childRel + '/')) {
          await rm(join(rootfs, childRel), { recursive: true });
        } else empty = false;
      } else if (pruneFile(childRel)) {
        await rm(join(rootfs, childRel));
        stats.files++;
        stats.bytes += st.size;
      } else empty = false;
    }
    return empty;
  };
  await visit('');
  return stats;
}
