// image-source.ts — the one place the template builder reaches the image
// builder (src/image/): buildImage(recipe) gives the read-only image file, its
// cache key and the program's argv/env.
import { buildImage, type ImageManifest } from '../image/build.js';
import type { Recipe } from '../image/recipe-types.js';

export interface BuiltImage {
  imagePath: string;
  key: string;
  argv: string[];
  env: string[] | Record<string, string>;
  manifest?: ImageManifest;
}
export type BuildImageFn = (recipe: string | Recipe, opts: { onProgress?: (line: string) => void; lockPath?: string }) => Promise<BuiltImage>;

export async function loadImageBuilder(): Promise<BuildImageFn> {
  return buildImage;
}
