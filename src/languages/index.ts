// index.ts — the languages forkbox serves, by name and alias. Adding a
// language is one module here (its recipe, RAM, runner protocol, warm-up).
import { python } from './python.js';
import type { LanguageModule } from './types.js';

export type { LanguageModule, RunnerAnswer, RunnerRequest } from './types.js';

export const LANGUAGE_MODULES: readonly LanguageModule[] = [python];

const BY_NAME = new Map<string, LanguageModule>();
for (const m of LANGUAGE_MODULES) for (const n of [m.name, ...m.aliases]) BY_NAME.set(n, m);

/** The module for a language name or alias, or undefined. */
export const languageModule = (name: string): LanguageModule | undefined => BY_NAME.get(name);
