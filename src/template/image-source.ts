// image-source.ts — the one place the template builder reaches the image
// builder (src/image/): buildImage(name) gives the read-only image file, its
// cache key and the program's argv/env.
import { buildImage } from '../image/build.js';

export interface BuiltImage {
  imagePath: string;
  key: string;
  argv: string[];
  env: string[] | Record<string, string>;
}
export type BuildImageFn = (name: string, opts: { onProgress?: (line: string) => void }) => Promise<BuiltImage>;

export async function loadImageBuilder(): Promise<BuildImageFn> {
  return buildImage;
}
