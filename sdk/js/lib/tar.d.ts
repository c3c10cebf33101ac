/** A member of an archive. `name` is relative, normalized, without a trailing slash. */
export interface TarEntry {
    name: string;
    type: 'file' | 'dir' | 'symlink';
    /** Permission bits (mode & 0o7777). */
    mode: number;
    /** Seconds since the epoch. */
    mtime: number;
    /** File contents (empty for dirs and symlinks). */
    data: Uint8Array;
    /** Link target of a symlink. */
    linkname?: string;
}
export declare class TarError extends Error {
    readonly name = "TarError";
}
export interface TarLimits {
    /** Most members (default 100000). */
    maxEntries?: number;
    /** Largest pax or GNU long-name header, bytes (default 1 MiB). */
    maxHeaderBytes?: number;
}
/**
 * A member name made safe: relative, `.` and empty segments dropped, no `..`, no NUL.
 * Throws TarError for an absolute name or one with `..`.
 */
export declare function safeName(raw: string): string;
/** True when a symlink at `name` pointing to `target` resolves inside the archive's root. */
export declare function linkStaysInside(name: string, target: string): boolean;
/** Parses a whole archive. Throws TarError on anything malformed, truncated or refused. */
export declare function readTar(buf: Uint8Array, limits?: TarLimits): TarEntry[];
/** Writes entries as a ustar archive (pax headers for names or link targets over 100 bytes). */
export declare function writeTar(entries: readonly TarEntry[]): Uint8Array;
