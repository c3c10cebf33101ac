// recipe-types.ts — the shape of an image recipe (what the builder needs to
// make one language's image); each language module (src/languages) owns its
// own recipe, and recipes.ts lists them by name.

export interface AcceptedRefusal { file: string; syscall: number; why: string }
export interface ExtraFile {
  /** Path under guest/ (the shipped runners and /etc files). */
  source?: string;
  /** Or the bytes themselves, base64 (a template recipe's files). */
  content?: string;
  /** Absolute image path. */
  path: string;
  executable?: boolean;
}

export interface Recipe {
  name: string;
  packages: string[];
  /** Packages left out of the closure although a dependency names them (with what only they pull in). */
  exclude?: string[];
  extraFiles: ExtraFile[];
  argv: string[];
  env: Record<string, string>;
  preload: string[];
  acceptedRefusals: AcceptedRefusal[];
  /** Build even with refused sites outside acceptedRefusals (listed in the report): a user's template. */
  reportRefusals?: boolean;
  /** Image paths that must resolve (following links) in the finished image. */
  mustExist: string[];
}
