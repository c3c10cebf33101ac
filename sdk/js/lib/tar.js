// tar.ts — a small ustar + pax reader and writer over Uint8Array (no Node, no
// dependencies), shared by the SDK (directory upload/download) and the server
// (archive routes). The reader is strict: checksums, sizes and member names are
// checked, and a member that is absolute, has `..`, or is a hard link, device
// or fifo is refused with TarError. It reads POSIX pax ('x', 'g') and GNU long
// names ('L', 'K'); the writer emits ustar with a pax header for long names.
export class TarError extends Error {
    name = 'TarError';
}
const BLOCK = 512;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
function utf8(b, what) {
    try {
        return dec.decode(b);
    }
    catch {
        throw new TarError(`${what} is not valid UTF-8`);
    }
}
/** A NUL-terminated field. */
function str(h, off, len) {
    let end = off;
    while (end < off + len && h[end] !== 0)
        end++;
    return utf8(h.subarray(off, end), 'a header field');
}
function octal(h, off, len, what) {
    if ((h[off] & 0x80) !== 0)
        throw new TarError(`${what}: base-256 numbers are not supported`);
    const s = str(h, off, len).trim();
    if (s === '')
        return 0;
    if (!/^[0-7]+$/.test(s))
        throw new TarError(`${what} is not an octal number: ${JSON.stringify(s.slice(0, 20))}`);
    const n = parseInt(s, 8);
    if (!Number.isSafeInteger(n))
        throw new TarError(`${what} is too large`);
    return n;
}
function checksumOf(h) {
    let sum = 0;
    for (let i = 0; i < BLOCK; i++)
        sum += i >= 148 && i < 156 ? 0x20 : h[i];
    return sum;
}
/**
 * A member name made safe: relative, `.` and empty segments dropped, no `..`, no NUL.
 * Throws TarError for an absolute name or one with `..`.
 */
export function safeName(raw) {
    if (raw.includes('\0'))
        throw new TarError(`member name contains NUL`);
    if (raw.startsWith('/'))
        throw new TarError(`member "${raw.slice(0, 200)}" has an absolute name`);
    const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..'))
        throw new TarError(`member "${raw.slice(0, 200)}" has a ".." component`);
    return parts.join('/');
}
/** True when a symlink at `name` pointing to `target` resolves inside the archive's root. */
export function linkStaysInside(name, target) {
    if (target === '' || target.startsWith('/') || target.includes('\0'))
        return false;
    const stack = name.split('/').slice(0, -1);
    for (const p of target.split('/')) {
        if (p === '' || p === '.')
            continue;
        if (p === '..') {
            if (stack.length === 0)
                return false;
            stack.pop();
        }
        else
            stack.push(p);
    }
    return true;
}
/** Records of a pax extended header: "<len> key=value\n"... */
function parsePax(b) {
    const out = {};
    let i = 0;
    while (i < b.length) {
        let sp = i;
        while (sp < b.length && b[sp] !== 0x20)
            sp++;
        const lenText = utf8(b.subarray(i, sp), 'a pax record');
        if (!/^\d{1,9}$/.test(lenText)) {
            if (b.subarray(i).every((x) => x === 0))
                break;
            throw new TarError('malformed pax record length');
        }
        const len = Number(lenText);
        if (len <= sp - i + 1 || i + len > b.length || b[i + len - 1] !== 0x0a)
            throw new TarError('malformed pax record');
        const rec = utf8(b.subarray(sp + 1, i + len - 1), 'a pax record');
        const eq = rec.indexOf('=');
        if (eq <= 0)
            throw new TarError('malformed pax record (no key)');
        out[rec.slice(0, eq)] = rec.slice(eq + 1);
        i += len;
    }
    return out;
}
/** Parses a whole archive. Throws TarError on anything malformed, truncated or refused. */
export function readTar(buf, limits = {}) {
    const maxEntries = limits.maxEntries ?? 100000;
    const maxHeader = limits.maxHeaderBytes ?? 1024 * 1024;
    const out = [];
    let off = 0;
    let pax = {};
    let globalPax = {};
    let longName;
    let longLink;
    let sawEnd = false;
    while (off + BLOCK <= buf.length) {
        const h = buf.subarray(off, off + BLOCK);
        if (h.every((x) => x === 0)) {
            sawEnd = true;
            break;
        }
        const sum = octal(h, 148, 8, 'header checksum');
        if (sum !== checksumOf(h))
            throw new TarError(`bad header checksum at offset ${off}`);
        const size = octal(h, 124, 12, 'member size');
        const type = String.fromCharCode(h[156]);
        const dataStart = off + BLOCK;
        const padded = Math.ceil(size / BLOCK) * BLOCK;
        if (size > buf.length - dataStart)
            throw new TarError(`member at offset ${off} claims ${size} bytes but the archive is truncated`);
        const data = buf.subarray(dataStart, dataStart + size);
        off = dataStart + padded;
        if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
            if (size > maxHeader)
                throw new TarError(`extended header of ${size} bytes is larger than ${maxHeader}`);
            if (type === 'x')
                pax = { ...pax, ...parsePax(data) };
            else if (type === 'g')
                globalPax = { ...globalPax, ...parsePax(data) };
            else {
                let end = data.length;
                while (end > 0 && data[end - 1] === 0)
                    end--;
                const s = utf8(data.subarray(0, end), 'a long name');
                if (type === 'L')
                    longName = s;
                else
                    longLink = s;
            }
            continue;
        }
        const meta = { ...globalPax, ...pax };
        const magic = str(h, 257, 6);
        const prefix = magic.startsWith('ustar') ? str(h, 345, 155) : '';
        const rawName = meta.path ?? longName ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
        const linkname = meta.linkpath ?? longLink ?? str(h, 157, 100);
        pax = {};
        longName = undefined;
        longLink = undefined;
        let kind;
        switch (type) {
            case '0':
            case '\0':
            case '7':
                kind = 'file';
                break;
            case '5':
                kind = 'dir';
                break;
            case '2':
                kind = 'symlink';
                break;
            case '1': throw new TarError(`member "${rawName.slice(0, 200)}" is a hard link (refused)`);
            case '3':
            case '4': throw new TarError(`member "${rawName.slice(0, 200)}" is a device (refused)`);
            case '6': throw new TarError(`member "${rawName.slice(0, 200)}" is a fifo (refused)`);
            default: throw new TarError(`member "${rawName.slice(0, 200)}" has unsupported type ${JSON.stringify(type)}`);
        }
        const name = safeName(rawName);
        if (name === '' && kind !== 'dir')
            throw new TarError('a non-directory member has an empty name');
        if (kind === 'symlink' && !linkStaysInside(name, linkname)) {
            throw new TarError(`symlink "${name.slice(0, 200)}" points outside the archive (${JSON.stringify(linkname.slice(0, 200))})`);
        }
        const paxSize = meta.size;
        if (paxSize !== undefined && Number(paxSize) !== size)
            throw new TarError('pax size records are not supported');
        const mtime = meta.mtime !== undefined ? Math.floor(Number(meta.mtime)) || 0 : octal(h, 136, 12, 'mtime');
        const e = { name, type: kind, mode: octal(h, 100, 8, 'mode') & 0o7777, mtime, data: kind === 'file' ? data : new Uint8Array(0) };
        if (kind === 'symlink')
            e.linkname = linkname;
        if (name === '')
            continue; // "./" itself
        if (out.length >= maxEntries)
            throw new TarError(`archive has more than ${maxEntries} members`);
        out.push(e);
    }
    if (!sawEnd && off < buf.length)
        throw new TarError('archive is truncated (partial header block)');
    if (!sawEnd && out.length === 0 && buf.length > 0)
        throw new TarError('archive is truncated');
    return out;
}
function putStr(h, off, len, s) {
    const b = enc.encode(s);
    h.set(b.subarray(0, len), off);
}
function putOctal(h, off, len, n) {
    putStr(h, off, len, n.toString(8).padStart(len - 1, '0') + '\0');
}
function header(name, type, size, mode, mtime, linkname = '') {
    const h = new Uint8Array(BLOCK);
    putStr(h, 0, 100, name);
    putOctal(h, 100, 8, mode & 0o7777);
    putOctal(h, 108, 8, 0);
    putOctal(h, 116, 8, 0);
    putOctal(h, 124, 12, size);
    putOctal(h, 136, 12, Math.max(0, Math.floor(mtime)));
    h.fill(0x20, 148, 156);
    h[156] = type.charCodeAt(0);
    putStr(h, 157, 100, linkname);
    putStr(h, 257, 8, 'ustar\x0000');
    const sum = checksumOf(h);
    putStr(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
    return h;
}
function paxRecord(key, value) {
    const body = ` ${key}=${value}\n`;
    const b = enc.encode(body).length;
    let len = b + 1;
    while (String(len).length + b !== len)
        len = String(len).length + b; // the length counts its own digits
    return `${len}${body}`;
}
const MAX_USTAR_SIZE = 0o77777777777;
/** Writes entries as a ustar archive (pax headers for names or link targets over 100 bytes). */
export function writeTar(entries) {
    const parts = [];
    for (const e of entries) {
        const name = safeName(e.name) + (e.type === 'dir' ? '/' : '');
        const link = e.linkname ?? '';
        const size = e.type === 'file' ? e.data.length : 0;
        if (size > MAX_USTAR_SIZE)
            throw new TarError(`member "${e.name}" is larger than 8 GiB`);
        let recs = '';
        if (enc.encode(name).length > 100)
            recs += paxRecord('path', name);
        if (enc.encode(link).length > 100)
            recs += paxRecord('linkpath', link);
        if (recs !== '') {
            const pb = enc.encode(recs);
            parts.push(header('PaxHeader/' + name.slice(0, 80).replace(/[^\x20-\x7e]/g, '_'), 'x', pb.length, 0o644, e.mtime), pad(pb));
        }
        const type = e.type === 'file' ? '0' : e.type === 'dir' ? '5' : '2';
        parts.push(header(name, type, size, e.mode, e.mtime, link));
        if (size > 0)
            parts.push(pad(e.data));
    }
    parts.push(new Uint8Array(BLOCK * 2));
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
        out.set(p, o);
        o += p.length;
    }
    return out;
}
function pad(b) {
    const n = Math.ceil(b.length / BLOCK) * BLOCK;
    if (n === b.length)
        return b;
    const out = new Uint8Array(n);
    out.set(b);
    return out;
}
