// image-source.ts — the one place the template builder reaches the image
// builder (src/image/, another part of the code base): buildImage(name) gives
// the read-only image file, its cache key and the program's argv/env.
export interface BuiltImage {
  imagePath: string;
  key: string;
  argv: string[];
  env: string[] | Record<string, string>;
  manifest?: unknown;
}
export type BuildImageFn = (name: string, opts: { onProgress?: (line: string) => void }) => Promise<BuiltImage>;

export async function loadImageBuilder(): Promise<BuildImageFn> {
  // Resolved at run time so this part builds before src/image/ lands.
  const candidates = ['../image/build.js', '../image/recipes.js', '../image/index.js'];
  for (const spec of candidates) {
    try {
      const mod = (await import(spec)) as { buildImage?: BuildImageFn };
      if (typeof mod.buildImage === 'function') return mod.buildImage;
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    }
  }
  throw new Error('image builder (src/image) is not available in this build');
}
