// index.ts — the languages forkbox serves, by name and alias. Adding a
// language is one module here (its recipe, RAM, runner protocol, warm-up).
import { javascript, typescript } from './javascript.js';
import { python } from './python.js';
import type { LanguageModule } from './types.js';

export type { LanguageModule, RunnerAnswer, RunnerRequest } from './types.js';

export const LANGUAGE_MODULES: readonly LanguageModule[] = [python, javascript, typescript];

const BY_NAME = new Map<string, LanguageModule>();
for (const m of LANGUAGE_MODULES) for (const n of [m.name, ...m.aliases]) BY_NAME.set(n, m);

/** Every name a client may send (canonical names first). */
export const LANGUAGE_NAMES: readonly string[] = [...LANGUAGE_MODULES.map((m) => m.name), ...LANGUAGE_MODULES.flatMap((m) => m.aliases)];

/** The template (image recipe) a language runs in: typescript runs in javascript's. */
export const templateOf = (m: LanguageModule): string => m.recipe.name;

/** The module for a language name or alias, or undefined. */
export const languageModule = (name: string): LanguageModule | undefined => BY_NAME.get(name);
