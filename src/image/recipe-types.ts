// recipe-types.ts — the shape of an image recipe (what the builder needs to
// make one language's image); each language module (src/languages) owns its
// own recipe, and recipes.ts lists them by name.

export interface AcceptedRefusal { file: string; syscall: number; why: string }
export interface ExtraFile { /** Path under guest/. */ source: string; /** Absolute image path. */ path: string; executable?: boolean }

export interface Recipe {
  name: string;
  packages: string[];
  extraFiles: ExtraFile[];
  argv: string[];
  env: Record<string, string>;
  preload: string[];
  acceptedRefusals: AcceptedRefusal[];
  /** Image paths that must resolve (following links) in the finished image. */
  mustExist: string[];
}
