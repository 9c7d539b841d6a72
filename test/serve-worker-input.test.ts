/**
 * The queue worker's job input (`readJobImage`), without Redis: every job a
 * client can enqueue is untrusted, so base64 images and file paths are
 * bounded in bytes, paths stay inside `--root` (lexically, whether or not
 * the target exists, and through symbolic links), and only regular files are
 * read. Each problem is an UnrecoverableError (the job fails once, no retry).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJobImage } from '../lib/server/worker.js';

let dir: string;
let root: string;

beforeAll(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-job-')));
  root = path.join(dir, 'root');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'small.bin'), Buffer.alloc(100, 7));
  fs.writeFileSync(path.join(root, 'big.bin'), Buffer.alloc(5000, 7));
  fs.writeFileSync(path.join(dir, 'secret.bin'), 'outside');
  fs.symlinkSync(path.join(dir, 'secret.bin'), path.join(root, 'link.bin'));
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  fs.mkdirSync(path.join(root, 'sub'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function refused(p: Promise<unknown>, message: RegExp): Promise<void> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UnrecoverableError);
  expect((e as Error).message).toMatch(message);
}

describe('mobilenet worker: job input', () => {
  it('decodes a base64 image up to the byte limit and refuses a longer one before decoding', async () => {
    const bytes = Buffer.alloc(999, 3);
    expect(Buffer.from(await readJobImage({ image: bytes.toString('base64') }, undefined, 1000))).toEqual(bytes);
    await refused(readJobImage({ image: Buffer.alloc(1500, 3).toString('base64') }, undefined, 1000), /2000 base64 characters \(about 1500 bytes\), more than the limit of 1000 bytes/);
    await refused(readJobImage({ image: '' }, undefined, 1000), /empty/);
  });

  it('reads a regular file inside --root up to the byte limit', async () => {
    expect(Buffer.from(await readJobImage({ path: 'small.bin' }, root, 1000))).toEqual(Buffer.alloc(100, 7));
    await refused(readJobImage({ path: 'big.bin' }, root, 1000), /^big\.bin: .*5000 bytes, more than the limit of 1000 bytes/);
  });

  it('refuses a path that leaves --root whether or not it exists, and a link that leads outside', async () => {
    await refused(readJobImage({ path: '../secret.bin' }, root), /outside the worker's --root/);
    await refused(readJobImage({ path: '../no-such-dir/x.jpg' }, root), /outside the worker's --root/);
    await refused(readJobImage({ path: '../'.repeat(40) + 'etc/passwd' }, root), /outside the worker's --root/);
    await refused(readJobImage({ path: 'link.bin' }, root), /outside the worker's --root .*symbolic link/);
  });

  it('refuses what is not a regular file without blocking (FIFO, directory, missing)', async () => {
    await refused(readJobImage({ path: 'fifo' }, root), /^fifo: .*not a regular file/);
    await refused(readJobImage({ path: 'sub' }, root), /^sub: is a directory/);
    await refused(readJobImage({ path: 'missing.jpg' }, root), /^missing\.jpg: cannot read file/);
  });
});
