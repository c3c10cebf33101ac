// shipped.ts — the templates forkbox ships, in the same shape as a user's
// recipe (recipe.ts): each language's own (python, javascript) and
// python-data (pandas, scipy, matplotlib with Agg, scikit-learn, preloaded).
import type { TemplateRecipe } from './recipe.js';

/** Threads and caches of the data stack pinned down for one vCPU and a read-only image. */
const DATA_ENV: Record<string, string> = {
  MPLBACKEND: 'Agg',
  // matplotlib's config and font cache: written at template boot (the snapshot keeps them), never per exec.
  MPLCONFIGDIR: '/tmp/.config/matplotlib',
  OMP_NUM_THREADS: '1',
  OPENBLAS_NUM_THREADS: '1',
  MKL_NUM_THREADS: '1',
  NUMEXPR_MAX_THREADS: '1',
  // joblib: no worker processes (the runtime has none); loky would probe the CPU count through /proc and /sys.
  JOBLIB_MULTIPROCESSING: '0',
  LOKY_MAX_CPU_COUNT: '1',
};

export const PYTHON_DATA: TemplateRecipe = {
  name: 'python-data',
  base: 'python',
  description: 'Python 3.11 with numpy, pandas, scipy, matplotlib (Agg) and scikit-learn preloaded',
  packages: ['python3-pandas', 'python3-scipy', 'python3-matplotlib', 'python3-sklearn'],
  // Debian's Depends pull these in for build tools (pythran: a compiler, with gcc and boost), GUIs (tk) and
  // font editing (fontTools' optional extras); nothing the preloaded stack imports loads them.
  exclude: ['python3-pythran', 'python3-pil.imagetk', 'python3-tk', 'libjs-jquery', 'libjs-jquery-ui', 'python3-sympy',
    'python3-mpmath', 'python3-lxml', 'python3-fs', 'python3-ufolib2', 'python3-unicodedata2', 'unicode-data', 'python3-lz4',
    'python3-brotli'],
  preload: ['pandas', 'scipy', 'scipy.optimize', 'scipy.stats', 'scipy.linalg', 'matplotlib', 'matplotlib.pyplot',
    'sklearn', 'sklearn.datasets', 'sklearn.linear_model', 'sklearn.model_selection', 'sklearn.ensemble'],
  // Draws and saves one figure so the font cache, the Agg renderer and the PNG writer are loaded before the snapshot.
  warmup: [
    'import io, matplotlib.pyplot as plt',
    'fig, ax = plt.subplots()',
    'ax.plot([0, 1], [0, 1]); ax.set_title("warm-up")',
    'fig.savefig(io.BytesIO(), format="png")',
    'plt.close(fig)',
    '',
  ].join('\n'),
  files: [],
  env: DATA_ENV,
  // Measured: the preloaded stack idles at ~220 MiB of arena (python: ~60 MiB); the 256 MiB beyond python's
  // 640 are added to the memory limit, so a program has about the room it has in python.
  ramMb: 896,
  warmForks: 2,
  shipped: true,
};

export const SHIPPED_TEMPLATES: readonly TemplateRecipe[] = [
  { name: 'python', base: 'python', description: 'Python 3.11 with numpy preloaded', packages: [], exclude: [], preload: [], files: [],
    env: {}, shipped: true },
  { name: 'javascript', base: 'javascript', description: "Debian's Node.js 18 (JavaScript and TypeScript)", packages: [], exclude: [],
    preload: [], files: [], env: {}, shipped: true },
  PYTHON_DATA,
];

export const shippedTemplate = (name: string): TemplateRecipe | undefined => SHIPPED_TEMPLATES.find((t) => t.name === name);
