// tar.ts — the server's tar reader and writer. There is one implementation, in
// the zero-dependency JS SDK (which cannot import anything), so that what the
// SDK and CLI write is exactly what the server reads; this module re-exports it.
export { readTar, writeTar, safeName, linkStaysInside, TarError, type TarEntry, type TarLimits } from '../../sdk/js/src/tar.js';
