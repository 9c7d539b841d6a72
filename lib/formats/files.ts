/**
 * File helpers shared by the model readers and writers (TF.js, HDF5,
 * `.keras`), the labels reader and the image loader:
 *
 * - `readRegularFile` / `readRegularFileSync`: only regular files are read
 *   (a FIFO, `/dev/zero`, `/proc/self/fd/0` or a directory is refused before
 *   any byte is read: `stat` first, then `open(O_NONBLOCK)` and `fstat` on
 *   the open descriptor, so a file swapped in between is caught too), and
 *   the size is checked against a limit before reading.
 * - `resolveInside`: a relative path (a TF.js shard) resolved inside a
 *   directory, refusing absolute paths, `..` escapes and symbolic links
 *   that lead outside.
 * - `checkJsonDepth`: refuses JSON nested deeper than a limit (the readers
 *   walk configs recursively).
 * - `atomicWrite`, `withTempFile`: temporary files, removed on failure and
 *   on SIGINT/SIGTERM (`lib/cleanup.ts`).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { removeOnSignal } from '../cleanup.js';
import { MAX_JSON_DEPTH } from '../limits.js';

/** Why a path is not a readable regular file of at most `maxBytes`, or null when it is. */
export class FileProblem extends Error {
  constructor(
    message: string,
    readonly code: 'ENOENT' | 'NOTREG' | 'DIR' | 'TOOBIG' | 'IO',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function kind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function checkStat(st: fs.Stats, maxBytes: number): void {
  if (st.isDirectory()) throw new FileProblem('is a directory, not a file', 'DIR');
  if (!st.isFile()) throw new FileProblem(`is ${kind(st)}, not a regular file: only regular files are read`, 'NOTREG');
  if (st.size > maxBytes) throw new FileProblem(`is ${st.size} bytes, more than the limit of ${maxBytes} bytes`, 'TOOBIG');
}

function ioProblem(e: unknown): FileProblem {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return new FileProblem('file not found', 'ENOENT', { cause: e });
  if (err.code === 'EISDIR') return new FileProblem('is a directory, not a file', 'DIR', { cause: e });
  return new FileProblem(`cannot read: ${err.message}`, 'IO', { cause: e });
}

const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/** Checks that `file` is a regular file of at most `maxBytes` without opening it; returns its size. Throws FileProblem. */
export async function statRegularFile(file: string, maxBytes = Infinity): Promise<number> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(file);
  } catch (e) {
    throw ioProblem(e);
  }
  checkStat(st, maxBytes);
  return st.size;
}

/** Reads a regular file of at most `maxBytes` bytes. Throws FileProblem (never blocks on a FIFO or device). */
export async function readRegularFile(file: string, maxBytes = Infinity): Promise<Buffer> {
  await statRegularFile(file, maxBytes);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, OPEN_FLAGS);
  } catch (e) {
    throw ioProblem(e);
  }
  try {
    const st = await fh.stat();
    checkStat(st, maxBytes);
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } catch (e) {
    if (e instanceof FileProblem) throw e;
    throw ioProblem(e);
  } finally {
    await fh.close();
  }
}

/** The synchronous form of `readRegularFile` (small files only: labels). */
export function readRegularFileSync(file: string, maxBytes = Infinity): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw ioProblem(e);
  }
  checkStat(st, maxBytes);
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (e) {
    throw ioProblem(e);
  }
  try {
    const st2 = fs.fstatSync(fd);
    checkStat(st2, maxBytes);
    const buf = Buffer.allocUnsafe(st2.size);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } catch (e) {
    if (e instanceof FileProblem) throw e;
    throw ioProblem(e);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Resolves `rel` inside `dir`: refuses absolute paths, paths that leave
 * `dir` through `..`, and (when the file exists) symbolic links whose target
 * lies outside `dir`. Returns the absolute path. Throws FileProblem with
 * code 'NOTREG' for a refused path.
 */
export async function resolveInside(dir: string, rel: string, options: { checkLinks?: boolean } = {}): Promise<string> {
  if (path.isAbsolute(rel) || path.win32.isAbsolute(rel) || rel.includes('\0')) {
    throw new FileProblem(`absolute path ${JSON.stringify(rel)} refused: weight paths must be relative to the model's directory`, 'NOTREG');
  }
  const base = path.resolve(dir);
  const abs = path.resolve(base, rel);
  const inside = (p: string, root: string): boolean => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
  if (!inside(abs, base)) throw new FileProblem(`path ${JSON.stringify(rel)} leaves the model's directory: refused`, 'NOTREG');
  if (options.checkLinks === false) return abs;
  let real: string;
  let realBase: string;
  try {
    realBase = await fsp.realpath(base);
    real = await fsp.realpath(abs);
  } catch {
    return abs; // missing: reported by the reader
  }
  if (!inside(real, realBase)) {
    throw new FileProblem(`path ${JSON.stringify(rel)} is a symbolic link to ${real}, outside the model's directory: refused`, 'NOTREG');
  }
  return abs;
}

/**
 * The nesting depth of a JSON value is at most `max` (iterative: a value
 * nested 100,000 deep is refused, not a stack overflow). Returns the
 * message describing the problem, or null.
 */
export function jsonDepthProblem(value: unknown, max = MAX_JSON_DEPTH): string | null {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [x, d] = stack.pop() as [unknown, number];
    if (typeof x !== 'object' || x === null) continue;
    if (d > max) return `JSON nested more than ${max} levels deep: refused`;
    if (Array.isArray(x)) for (const y of x) stack.push([y, d + 1]);
    else for (const y of Object.values(x)) stack.push([y, d + 1]);
  }
  return null;
}

/** Writes `target` through a temporary file in the same directory, renamed when complete. */
export async function atomicWrite(target: string, write: (tmp: string) => Promise<void> | void): Promise<void> {
  const abs = path.resolve(target);
  const dir = path.dirname(abs);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(abs)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const untrack = removeOnSignal(tmp);
  try {
    await write(tmp);
    await fsp.rename(tmp, abs);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  } finally {
    untrack();
  }
}

/** Creates a private temporary directory, runs `fn` on a file path inside it, removes the directory (also on SIGINT/SIGTERM). */
export async function withTempPath<T>(suffix: string, fn: (p: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mobilenet-'));
  const untrack = removeOnSignal(dir);
  try {
    return await fn(path.join(dir, `data${suffix}`));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
    untrack();
  }
}

/** Writes bytes to a temporary file, runs `fn` on its path, removes it. */
export async function withTempFile<T>(bytes: Uint8Array, suffix: string, fn: (p: string) => Promise<T>): Promise<T> {
  return withTempPath(suffix, async (p) => {
    await fsp.writeFile(p, bytes);
    return fn(p);
  });
}
