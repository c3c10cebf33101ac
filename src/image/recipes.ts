// recipes.ts — what goes into each image: Debian packages, extra files from
// guest/, the argv/env the template boots with, the modules the runner
// preloads, and the syscall sites we accept leaving unrewritten (each with the
// reason it is never reached by the runner; if one is, that sandbox crashes
// with a CPU fault, which the VMM reports — never a silent misbehaviour).

import { NODE_RECIPE } from '../languages/javascript.js';
import { PYTHON_RECIPE } from '../languages/python.js';

export type { AcceptedRefusal, ExtraFile, Recipe } from './recipe-types.js';
import type { Recipe } from './recipe-types.js';

/** Image recipes by name: each language's own (src/languages/*), plus any built for tools. */
export const RECIPES: Record<string, Recipe> = {
  python: PYTHON_RECIPE,
  javascript: NODE_RECIPE,
};

export function getRecipe(name: string): Recipe {
  const r = RECIPES[name];
  if (!r) throw new Error(`unknown image recipe "${name}" (known: ${Object.keys(RECIPES).join(', ')})`);
  return r;
}
