/**
 * The inputs of the commands that read images (classify, embed): files,
 * directories (walked recursively, sorted, hidden entries skipped, image
 * extensions only), globs (tinyglobby) and `-` for standard input. Each file
 * is listed once, at its first mention, however many arguments name it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { glob } from 'tinyglobby';

export const IMAGE_EXTENSIONS = new Set([
  '.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.heif', '.svg',
]);

const GLOB_CHARS = /[*?[\]{}]/;

/** One input: the path to read and the name to print. */
export interface Input {
  path: string;
  display: string;
  /** Set when the argument itself could not be expanded. */
  error?: string;
  /** `-`: the image is read from standard input. */
  stdin?: boolean;
}

async function walk(dir: string, display: string, out: Input[]): Promise<void> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (e) {
    out.push({ path: dir, display, error: `cannot read directory (${(e as Error).message})` });
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    const d = path.join(display, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      try {
        const st = await fs.promises.stat(p);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch {
        isFile = true; // dangling link: reported as an unreadable file
      }
      if (isDir) continue; // do not follow directory links (cycles)
    }
    if (isDir) await walk(p, d, out);
    else if (isFile && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) out.push({ path: p, display: d });
  }
}

/**
 * Expands files, directories, globs and `-` (standard input) into the list
 * of inputs, in argument order; a file reached twice (named, and inside a
 * named directory or glob) is listed once, where it first appears.
 */
export async function expandInputs(args: readonly string[], cwd: string): Promise<Input[]> {
  const out: Input[] = [];
  for (const arg of args) {
    if (arg === '-') {
      out.push({ path: '-', display: '-', stdin: true });
      continue;
    }
    const abs = path.resolve(cwd, arg);
    let st: fs.Stats | undefined;
    try {
      st = await fs.promises.stat(abs);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) {
      await walk(abs, arg, out);
    } else if (st === undefined && GLOB_CHARS.test(arg)) {
      const matches = await glob(arg, { cwd, onlyFiles: true, dot: false, expandDirectories: false });
      matches.sort();
      if (matches.length === 0) out.push({ path: abs, display: arg, error: 'no files match this pattern' });
      for (const m of matches) out.push({ path: path.resolve(cwd, m), display: m });
    } else {
      out.push({ path: abs, display: arg });
    }
  }
  const seen = new Set<string>();
  return out.filter((i) => {
    if (i.error !== undefined) return true;
    const key = i.stdin ? '-' : i.path;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Reads all of standard input (an image piped in). */
export async function readStdin(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}
