/**
 * Hostile model files (issue 14): every case is a small file crafted here,
 * each of which the readers mishandled before (read a file outside the
 * model, grew memory without bound, hung, or failed on a valid float16).
 *
 * - TF.js: weightsManifest paths outside the model's directory (absolute,
 *   `..`, a symbolic link out), special files as shards (FIFO, /dev/zero,
 *   /proc/self/fd/0), one shard listed 3,000 times (byte budget), JSON nested
 *   100,000 deep.
 * - HDF5: an external link to another HDF5 file, a soft-link cycle, a huge
 *   unreferenced dataset with no storage, a referenced dataset whose
 *   declared bytes exceed the budget (named in the error), float16
 *   datasets, external raw storage (a dataset whose values live in another
 *   file) and a virtual dataset (mapped from a dataset of another file),
 *   both crafted byte by byte (test/helpers/hdf5.ts: h5wasm cannot write
 *   them) and first shown to load the other file's values through the
 *   HDF5 library itself, a FIFO given as the .h5.
 * - .keras: a zip bomb whose header lies about its size, an entry
 *   declaring more than the budget, the same HDF5 attacks inside
 *   model.weights.h5 (external link, external raw storage), a central
 *   directory that disagrees with the local headers or the data, no
 *   temporary file left behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import h5wasm from 'h5wasm/node';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTfjs } from '../lib/formats/tfjs.js';
import { readH5, writeH5 } from '../lib/formats/h5.js';
import { normalizeModelConfig, readKeras3, writeKeras3 } from '../lib/formats/keras3.js';
import { readModelFile } from '../lib/formats/index.js';
import { halfToFloat } from '../lib/formats/tfjs.js';
import { contiguousLayoutAt, denseKerasConfig, patchObjectHeader, setExternalStorage, setVirtualLayout } from './helpers/hdf5.js';
import { ModelFormatError, UnsupportedLayerError, WeightMismatchError } from '../lib/errors.js';
import { loadModel } from '../lib/model.js';
import { hasShared, shared } from './helpers/shared.js';
import type { NamedWeights } from '../lib/keras/types.js';

let tmp: string;
beforeAll(async () => {
  await h5wasm.ready;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-untrusted-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const dir = (name: string): string => {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

/** A one-layer TF.js model.json (Dense 4 → 2) whose single group lists `paths`. */
function modelJson(paths: string[], units = 2): string {
  return JSON.stringify({
    modelTopology: {
      class_name: 'Sequential',
      config: { name: 's', layers: [{ class_name: 'Dense', config: { name: 'd', units, use_bias: true, batch_input_shape: [null, 4] } }] },
    },
    weightsManifest: [
      {
        paths,
        weights: [
          { name: 'd/kernel', shape: [4, units], dtype: 'float32' },
          { name: 'd/bias', shape: [units], dtype: 'float32' },
        ],
      },
    ],
  });
}

const shard = Buffer.from(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 0.5, -0.5]).buffer);

function mkfifo(p: string): void {
  execFileSync('mkfifo', [p]);
}

describe('TF.js model.json: files outside the model are never read', () => {
  const secret = (): string => {
    const p = path.join(tmp, 'secret.bin');
    fs.writeFileSync(p, shard); // a valid shard: a reader that follows the path would load it
    return p;
  };

  it('an absolute shard path is refused', async () => {
    const d = dir('abs');
    fs.writeFileSync(path.join(d, 'model.json'), modelJson([secret()]));
    const err = await readTfjs(path.join(d, 'model.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toMatch(/model\.json: weightsManifest group 1: absolute path .* refused/);
  });

  it('a path escaping with .. is refused', async () => {
    secret();
    const d = dir('dotdot');
    fs.writeFileSync(path.join(d, 'model.json'), modelJson(['../secret.bin']));
    await expect(readTfjs(path.join(d, 'model.json'))).rejects.toThrow(/"\.\.\/secret\.bin" leaves the model's directory: refused/);
  });

  it('a symbolic link leading outside the directory is refused; one inside is read', async () => {
    const d = dir('symlink');
    fs.symlinkSync(secret(), path.join(d, 'shard.bin'));
    fs.writeFileSync(path.join(d, 'model.json'), modelJson(['shard.bin']));
    await expect(readTfjs(path.join(d, 'model.json'))).rejects.toThrow(/is a symbolic link to .*secret\.bin, outside the model's directory: refused/);
    const ok = dir('symlink-inside');
    fs.writeFileSync(path.join(ok, 'real.bin'), shard);
    fs.symlinkSync('real.bin', path.join(ok, 'shard.bin'));
    fs.writeFileSync(path.join(ok, 'model.json'), modelJson(['shard.bin']));
    const r = await readTfjs(path.join(ok, 'model.json'));
    expect([...(r.weights.get('d/bias')?.data ?? [])]).toEqual([0.5, -0.5]);
  });
});

describe('TF.js model.json: memory and time stay bounded', () => {
  it('a FIFO shard is refused without blocking', async () => {
    const d = dir('fifo');
    mkfifo(path.join(d, 'shard.bin'));
    fs.writeFileSync(path.join(d, 'model.json'), modelJson(['shard.bin']));
    await expect(readTfjs(path.join(d, 'model.json'))).rejects.toThrow(/is a FIFO \(named pipe\), not a regular file/);
  });

  it('/dev/zero and /proc/self/fd/0 linked as shards are refused', async () => {
    const d = dir('devzero');
    fs.symlinkSync('/dev/zero', path.join(d, 'zero.bin'));
    fs.writeFileSync(path.join(d, 'model.json'), modelJson(['zero.bin']));
    // The link leaves the directory: refused before its type matters.
    await expect(readTfjs(path.join(d, 'model.json'))).rejects.toThrow(ModelFormatError);
    // Read through a custom directory check: a character device is still not read.
    const { readRegularFile } = await import('../lib/formats/files.js');
    await expect(readRegularFile('/dev/zero')).rejects.toThrow(/is a character device, not a regular file/);
    await expect(readRegularFile('/proc/self/fd/0')).rejects.toThrow(/not a regular file|file not found/);
  });

  it('one shard listed 3,000 times is refused from the sizes before reading (byte budget)', async () => {
    const d = dir('repeat');
    fs.writeFileSync(path.join(d, 'big.bin'), Buffer.alloc(1 << 20));
    const json = JSON.parse(modelJson(Array.from({ length: 3000 }, () => 'big.bin'))) as { weightsManifest: Array<{ paths: string[] }> };
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(json));
    const before = process.memoryUsage().rss;
    const err = await readTfjs(path.join(d, 'model.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toMatch(/reading the shards \(3145728000 bytes on disk\) and decoding them needs \d+ bytes: too large, the limit is 1073741824 bytes \(raise it with the maxModelBytes option or MOBILENET_MAX_MODEL_BYTES\)/);
    expect(process.memoryUsage().rss - before).toBeLessThan(512 << 20);
    // The option lowers (or raises) the budget.
    const small = dir('budget');
    fs.writeFileSync(path.join(small, 'shard.bin'), Buffer.alloc(4000));
    fs.writeFileSync(path.join(small, 'model.json'), modelJson(['shard.bin'], 200));
    // 4,000 bytes to read + 4,000 bytes of float32 values.
    await expect(readTfjs(path.join(small, 'model.json'), undefined, { maxModelBytes: 7999 })).rejects.toThrow(/the weightsManifest needs 8000 bytes: too large, the limit is 7999 bytes/);
    expect((await readTfjs(path.join(small, 'model.json'), undefined, { maxModelBytes: 8000 })).weights.size).toBe(2);
  });

  it('a config nested 100,000 deep is a ModelFormatError naming the file, not a stack overflow', async () => {
    const d = dir('deep');
    let deep = '0';
    for (let i = 0; i < 100_000; i++) deep = `[${deep}]`;
    const text = modelJson(['shard.bin']).replace('"units":2', `"units":2,"junk":${deep}`);
    fs.writeFileSync(path.join(d, 'model.json'), text);
    fs.writeFileSync(path.join(d, 'shard.bin'), shard);
    const err = await readTfjs(path.join(d, 'model.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toBe(`${path.join(d, 'model.json')}: JSON nested more than 512 levels deep: refused`);
  });
});

// ---------------------------------------------------------------- HDF5

const weights = (): NamedWeights =>
  new Map([
    ['d/kernel', { shape: [4, 2], data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]) }],
    ['d/bias', { shape: [2], data: new Float32Array([0.5, -0.5]) }],
  ]);

async function keras2h5(name: string, edit?: (f: InstanceType<typeof h5wasm.File>) => void): Promise<string> {
  const p = path.join(tmp, name);
  await writeH5(p, undefined, weights());
  if (edit) {
    const f = new h5wasm.File(p, 'a');
    try {
      edit(f);
    } finally {
      f.close();
    }
  }
  return p;
}

describe('HDF5: links, external storage and bombs', () => {
  it('an external link to another HDF5 file is refused (its data is not loaded as weights)', async () => {
    const other = path.join(tmp, 'other.h5');
    const o = new h5wasm.File(other, 'w');
    o.create_dataset({ name: 'secret', data: new Float32Array([9, 9]), shape: [2], dtype: '<f' });
    o.close();
    const p = await keras2h5('extlink.h5', (f) => {
      const g = f.get('d/d') as InstanceType<typeof h5wasm.Group>;
      g.create_external_link(other, '/secret', 'extra');
    });
    const err = await readH5(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain(`extlink.h5: /d/d/extra is an external link to ${other}:/secret: links to other files are refused`);
  });

  /**
   * A Keras weights-only .h5 whose d/kernel:0 (4x2 float32, contiguous) is
   * then re-pointed by `craft` at another file; `pad` is an unreferenced
   * 4200-byte dataset whose raw data holds the structures the crafting needs.
   */
  const kernel = new Float32Array([1.5, 2.25, 3.125, 4.0625, 5.5, 6.75, 7.875, 8.9375]);
  async function craftedH5(name: string, craft: (buf: Buffer, layoutBody: number, scratchAt: number) => void): Promise<string> {
    const p = path.join(tmp, name);
    await writeH5(p, undefined, new Map([['d/kernel', { shape: [4, 2], data: kernel }], ['d/bias', { shape: [2], data: new Float32Array([0.5, -0.5]) }]]));
    const f = new h5wasm.File(p, 'a');
    f.create_dataset({ name: 'pad', data: new Uint8Array(4200).fill(0x5a), shape: [4200], dtype: '<B' });
    f.close();
    const buf = fs.readFileSync(p);
    const dataAt = buf.indexOf(Buffer.from(kernel.buffer));
    const scratchAt = buf.indexOf(Buffer.alloc(4200, 0x5a));
    expect(dataAt).toBeGreaterThan(0);
    expect(scratchAt).toBeGreaterThan(0);
    craft(buf, contiguousLayoutAt(buf, dataAt, 32), scratchAt);
    fs.writeFileSync(p, buf);
    return p;
  }
  const secretValues = new Float32Array([-9, 9, -99, 99, -999, 999, 1e-9, 1e9]);

  it('a dataset with external raw storage (its values in another file) is refused, naming both files; the secret is not loaded', async () => {
    const secret = path.join(tmp, 'efl-secret.bin');
    fs.writeFileSync(secret, Buffer.from(secretValues.buffer));
    const p = await craftedH5('efl.h5', (buf, layout, scratch) => setExternalStorage(buf, layout, scratch, secret, 32));
    // The crafted file is what it claims to be: the HDF5 library itself, unsandboxed, reads the secret as the kernel.
    const check = new h5wasm.File(p, 'r');
    expect([...((check.get('d/d/kernel:0') as InstanceType<typeof h5wasm.Dataset>).value as Float32Array)]).toEqual([...secretValues]);
    check.close();
    const err = await readH5(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toBe(`${p}: dataset /d/d/kernel:0 stores its values in an external file (${secret}): external storage is refused (Keras never writes it)`);
    // Through the generic entry point too, and with the external file missing (nothing to read, still refused or failed, typed).
    await expect(readModelFile(p)).rejects.toThrow(ModelFormatError);
    // External storage pointing back into the model file itself (at the bias's bytes) is external storage too.
    const self = await craftedH5('efl-self.h5', (buf, layout, scratch) => setExternalStorage(buf, layout, scratch, path.join(tmp, 'efl-self.h5'), 32));
    await expect(readH5(self)).rejects.toThrow(`${self}: dataset /d/d/kernel:0 stores its values in an external file (${self}): external storage is refused`);
    const gone = await craftedH5('efl-missing.h5', (buf, layout, scratch) => setExternalStorage(buf, layout, scratch, path.join(tmp, 'no-such-file.bin'), 32));
    await expect(readH5(gone)).rejects.toThrow(ModelFormatError);
  });

  it('a virtual dataset (its values mapped from a dataset of another file) is refused before anything is read, naming the source', async () => {
    const source = path.join(tmp, 'vds-source.h5');
    const o = new h5wasm.File(source, 'w');
    o.create_dataset({ name: 'secret', data: secretValues, shape: [4, 2], dtype: '<f' });
    o.close();
    const p = await craftedH5('vds.h5', (buf, layout, scratch) => setVirtualLayout(buf, layout, scratch, source, '/secret'));
    const check = new h5wasm.File(p, 'r');
    const ds = check.get('d/d/kernel:0') as InstanceType<typeof h5wasm.Dataset>;
    expect((ds.metadata as { virtual_sources?: unknown }).virtual_sources).toEqual([{ file_name: source, dset_name: '/secret' }]);
    expect([...(ds.value as Float32Array)]).toEqual([...secretValues]);
    check.close();
    const err = await readH5(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toBe(`${p}: dataset /d/d/kernel:0 is a virtual dataset (source ${source}:/secret): virtual datasets are refused (Keras never writes them)`);
  });

  it('a soft-link cycle costs nothing: not followed, and the weights read', async () => {
    const p = await keras2h5('cycle.h5', (f) => {
      (f.get('d') as InstanceType<typeof h5wasm.Group>).create_soft_link('/', 'up');
      (f.get('d/d') as InstanceType<typeof h5wasm.Group>).create_soft_link('/d', 'loop');
    });
    const started = Date.now();
    const r = await readH5(p, { timeoutMs: 60_000 });
    expect([...(r.weights.get('d/kernel')?.data ?? [])]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('a weight that is a soft link is refused, naming it', async () => {
    const p = await keras2h5('softweight.h5', (f) => {
      const g = f.get('d/d') as InstanceType<typeof h5wasm.Group>;
      g.create_dataset({ name: 'real', data: new Float32Array(2), shape: [2], dtype: '<f' });
    });
    // Replace bias:0 by a soft link: rename is not available, so write a second file with the link under the listed name.
    const p2 = path.join(tmp, 'softweight2.h5');
    const f = new h5wasm.File(p2, 'w');
    f.create_attribute('layer_names', ['d'], [1], 'A2');
    const g = f.create_group('d');
    g.create_attribute('weight_names', ['d/kernel:0'], [1], 'A11');
    g.create_group('d').create_soft_link('/d/d/kernel:0', 'kernel:0');
    f.close();
    expect(fs.existsSync(p)).toBe(true);
    await expect(readH5(p2)).rejects.toThrow(/weight 'd\/kernel:0' of layer 'd' is a soft link to \/d\/d\/kernel:0: links are not followed/);
  });

  it('a huge unreferenced dataset with no storage is never read', async () => {
    const p = await keras2h5('unreferenced.h5', (f) => {
      const d = f.create_dataset({ name: 'junk', data: new Float64Array(4), shape: [4], maxshape: [null], chunks: [1024], dtype: '<d' });
      (d as unknown as { resize(s: number[]): void }).resize([2 ** 31]); // 16 GiB declared, no chunk written
    });
    expect(fs.statSync(p).size).toBeLessThan(64 * 1024);
    const r = await readH5(p);
    expect(r.weights.size).toBe(2);
  });

  it('a referenced dataset declaring more bytes than the budget is refused before it is read, naming it and its element size', async () => {
    const p = path.join(tmp, 'declared.h5');
    const f = new h5wasm.File(p, 'w');
    f.create_attribute('layer_names', ['d'], [1], 'A2');
    const g = f.create_group('d');
    g.create_attribute('weight_names', ['d/kernel:0', 'd/bias:0'], [2], 'A11');
    const s = g.create_group('d');
    s.create_dataset({ name: 'bias:0', data: new Float32Array(2), shape: [2], dtype: '<f' });
    const k = s.create_dataset({ name: 'kernel:0', data: new Float64Array(4), shape: [4], maxshape: [null], chunks: [4096], dtype: '<d' });
    (k as unknown as { resize(s: number[]): void }).resize([2 ** 28]); // 2^28 float64 = 2 GiB, under the old 2^29-element cap
    f.close();
    const err = await readH5(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain('dataset /d/d/kernel:0 declares 2147483648 bytes (shape [268435456], 8-byte elements)');
    expect((err as Error).message).toContain('too large, the limit is 1073741824 bytes');
  });

  it('float16 datasets are read (IEEE half, exact)', async () => {
    // h5wasm cannot write float16: write float32 and rewrite the datatype message to IEEE half (same message size).
    const halves = [0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x8000, 0x4248, 0xbc00];
    const raw = new Uint16Array(16);
    raw.set(halves);
    const kernel = new Float32Array(raw.buffer); // 8 float32 = 32 bytes; the first 16 bytes hold the 8 halves
    const p = path.join(tmp, 'half.h5');
    await writeH5(p, undefined, new Map([['d/kernel', { shape: [4, 2], data: kernel }]]));
    const bytes = fs.readFileSync(p);
    const f32 = Buffer.from([0x11, 0x20, 0x1f, 0x00, 0x04, 0, 0, 0, 0, 0, 0x20, 0, 0x17, 0x08, 0, 0x17, 0x7f, 0, 0, 0]);
    const f16 = Buffer.from([0x11, 0x20, 0x0f, 0x00, 0x02, 0, 0, 0, 0, 0, 0x10, 0, 0x0a, 0x05, 0, 0x0a, 0x0f, 0, 0, 0]);
    const at = bytes.indexOf(f32);
    expect(at).toBeGreaterThan(0);
    patchObjectHeader(bytes, at, f16);
    expect(bytes.indexOf(f32, at + 1)).toBe(-1);
    fs.writeFileSync(p, bytes);
    const check = new h5wasm.File(p, 'r');
    expect((check.get('d/d/kernel:0') as InstanceType<typeof h5wasm.Dataset>).metadata.size).toBe(2);
    check.close();
    const r = await readH5(p);
    expect([...(r.weights.get('d/kernel')?.data ?? [])]).toEqual(halves.map(halfToFloat));
  });

  it('a FIFO or a directory given as the .h5 is refused without blocking', async () => {
    const fifo = path.join(tmp, 'fifo.h5');
    mkfifo(fifo);
    await expect(readH5(fifo)).rejects.toThrow(`${fifo}: is a FIFO (named pipe), not a regular file`);
    await expect(readModelFile(fifo)).rejects.toThrow(ModelFormatError);
  });
});

// ---------------------------------------------------------------- .keras


function leftovers(before: Set<string>): string[] {
  return fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('mobilenet-') && !before.has(n));
}

describe('.keras archives: zip bombs and the HDF5 attacks inside', () => {
  it('reads a valid archive and leaves no temporary file', async () => {
    const p = path.join(tmp, 'ok.keras');
    await writeKeras3(p, denseKerasConfig, weights());
    const before = new Set(fs.readdirSync(os.tmpdir()));
    const r = await readKeras3(p);
    expect([...(r.weights.get('d/bias')?.data ?? [])]).toEqual([0.5, -0.5]);
    expect(leftovers(before)).toEqual([]);
  });

  it('an entry that inflates past the size its header declares is stopped (zip bomb)', async () => {
    const p = path.join(tmp, 'ok2.keras');
    await writeKeras3(p, denseKerasConfig, weights());
    const { unzipSync } = await import('fflate');
    const entries = unzipSync(fs.readFileSync(p));
    // 64 MiB of zeros, deflated (~64 KiB), but the local header claims 1000 bytes.
    const bomb = zipSync({ 'config.json': entries['config.json'] as Uint8Array, 'model.weights.h5': [new Uint8Array(64 << 20), { level: 9 }] });
    const buf = Buffer.from(bomb);
    // Patch the uncompressed size of model.weights.h5 in its local header and central directory entry.
    for (let i = buf.indexOf('PK\x03\x04'); i >= 0; i = buf.indexOf('PK\x03\x04', i + 4)) {
      if (buf.subarray(i + 30, i + 30 + buf.readUInt16LE(i + 26)).toString() === 'model.weights.h5') buf.writeUInt32LE(1000, i + 22);
    }
    for (let i = buf.indexOf('PK\x01\x02'); i >= 0; i = buf.indexOf('PK\x01\x02', i + 4)) {
      if (buf.subarray(i + 46, i + 46 + buf.readUInt16LE(i + 28)).toString() === 'model.weights.h5') buf.writeUInt32LE(1000, i + 24);
    }
    fs.writeFileSync(path.join(tmp, 'bomb.keras'), buf);
    const before = new Set(fs.readdirSync(os.tmpdir()));
    const err = await readKeras3(path.join(tmp, 'bomb.keras')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain('bomb.keras: zip entry model.weights.h5 inflates to more than the 1000 bytes it declares: refused (zip bomb?)');
    expect(leftovers(before)).toEqual([]);
  });

  /** A valid archive with `edit` applied to the central directory entry (offset of its signature) and/or local header of `name`. */
  async function patchedArchive(out: string, name: string, edit: { central?: (buf: Buffer, at: number) => void; local?: (buf: Buffer, at: number) => void }): Promise<string> {
    const src = path.join(tmp, `src-${out}`);
    await writeKeras3(src, denseKerasConfig, weights());
    const buf = fs.readFileSync(src);
    let patched = 0;
    for (let i = buf.indexOf('PK\x01\x02'); i >= 0; i = buf.indexOf('PK\x01\x02', i + 4)) {
      if (edit.central && buf.subarray(i + 46, i + 46 + buf.readUInt16LE(i + 28)).toString() === name) {
        edit.central(buf, i);
        patched++;
      }
    }
    for (let i = buf.indexOf('PK\x03\x04'); i >= 0; i = buf.indexOf('PK\x03\x04', i + 4)) {
      if (edit.local && buf.subarray(i + 30, i + 30 + buf.readUInt16LE(i + 26)).toString() === name) {
        edit.local(buf, i);
        patched++;
      }
    }
    expect(patched).toBe((edit.central ? 1 : 0) + (edit.local ? 1 : 0));
    const p = path.join(tmp, out);
    fs.writeFileSync(p, buf);
    return p;
  }

  it('a central directory that lies about an entry (size, name, CRC) is refused: Keras reads the central directory, the stream the local headers', async () => {
    const ok = await patchedArchive('cd-ok.keras', 'model.weights.h5', {});
    expect((await readKeras3(ok)).weights.size).toBe(2);
    // The central directory declares fewer bytes than the local header (and the data) hold.
    const small = await patchedArchive('cd-small.keras', 'model.weights.h5', { central: (b, i) => b.writeUInt32LE(1000, i + 24) });
    const e1 = await readKeras3(small).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ModelFormatError);
    expect((e1 as Error).message).toMatch(/cd-small\.keras: zip entry model\.weights\.h5: its local header declares \d+ bytes \(\d+ compressed, method \d\) but the central directory declares 1000 \(\d+ compressed, method \d\): refused \(inconsistent archive\)/);
    // Both headers declare more than the entry inflates to.
    const big = await patchedArchive('cd-big.keras', 'config.json', { central: (b, i) => b.writeUInt32LE(b.readUInt32LE(i + 24) + 7, i + 24), local: (b, i) => b.writeUInt32LE(b.readUInt32LE(i + 22) + 7, i + 22) });
    await expect(readKeras3(big)).rejects.toThrow(/cd-big\.keras: zip entry config\.json inflates to (\d+) bytes but declares \d+: refused \(inconsistent archive\)/);
    // An entry whose local header the central directory does not list (another zip reader would not see it).
    const hidden = await patchedArchive('cd-hidden.keras', 'config.json', { central: (b, i) => b.write('X', i + 46 + 'config.jso'.length) });
    await expect(readKeras3(hidden)).rejects.toThrow(/cd-hidden\.keras: zip entry "config\.json" has a local header but is not in the central directory: refused/);
    // The inflated bytes do not match the central directory's CRC-32.
    const crc = await patchedArchive('cd-crc.keras', 'model.weights.h5', { central: (b, i) => b.writeUInt32LE((b.readUInt32LE(i + 16) ^ 1) >>> 0, i + 16) });
    await expect(readKeras3(crc)).rejects.toThrow(/cd-crc\.keras: zip entry model\.weights\.h5: CRC-32 of the inflated bytes is [0-9a-f]{8}, the central directory says [0-9a-f]{8}: corrupt archive/);
    // A central directory that does not end where its end record begins (offset moved).
    const moved = path.join(tmp, 'cd-moved.keras');
    const mb = fs.readFileSync(ok);
    const eocd = mb.lastIndexOf('PK\x05\x06');
    mb.writeUInt32LE(mb.readUInt32LE(eocd + 16) - 4, eocd + 16);
    fs.writeFileSync(moved, mb);
    await expect(readKeras3(moved)).rejects.toThrow(/cd-moved\.keras: corrupt \.keras zip archive: the central directory \(\d+ bytes at offset \d+\) does not end where its end record begins/);
  });

  it('an archive written as a stream (sizes only in data descriptors and the central directory) is read', async () => {
    const src = path.join(tmp, 'src-stream.keras');
    await writeKeras3(src, denseKerasConfig, weights());
    const { unzipSync, Zip, ZipDeflate, ZipPassThrough } = await import('fflate');
    const entries = unzipSync(fs.readFileSync(src));
    const chunks: Uint8Array[] = [];
    const zip = new Zip((err, data) => {
      if (err) throw err;
      chunks.push(data);
    });
    for (const [name, data] of Object.entries(entries)) {
      const f = name === 'model.weights.h5' ? new ZipPassThrough(name) : new ZipDeflate(name, { level: 6 });
      zip.add(f);
      f.push(data, true);
    }
    zip.end();
    const buf = Buffer.concat(chunks);
    expect(buf.readUInt16LE(6) & 8).toBe(8); // general purpose flag bit 3: sizes follow the data
    const p = path.join(tmp, 'stream.keras');
    fs.writeFileSync(p, buf);
    const r = await readKeras3(p);
    expect([...(r.weights.get('d/kernel')?.data ?? [])]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('an entry declaring more than the byte budget is refused before inflating', async () => {
    const p = path.join(tmp, 'ok3.keras');
    await writeKeras3(p, denseKerasConfig, weights());
    const { unzipSync } = await import('fflate');
    const entries = unzipSync(fs.readFileSync(p));
    const big = zipSync({ 'config.json': entries['config.json'] as Uint8Array, 'model.weights.h5': [new Uint8Array(8 << 20), { level: 9 }] });
    fs.writeFileSync(path.join(tmp, 'big.keras'), big);
    await expect(readKeras3(path.join(tmp, 'big.keras'), { maxModelBytes: 4 << 20 })).rejects.toThrow(
      /big\.keras: zip entry model\.weights\.h5 declares 8388608 bytes: inflating the archive needs \d+ bytes: too large, the limit is 4194304 bytes/,
    );
  });

  it('a model.weights.h5 with an external link is refused, naming the archive', async () => {
    const p = path.join(tmp, 'ok4.keras');
    await writeKeras3(p, denseKerasConfig, weights());
    const { unzipSync } = await import('fflate');
    const entries = unzipSync(fs.readFileSync(p));
    const inner = path.join(tmp, 'inner.weights.h5');
    fs.writeFileSync(inner, entries['model.weights.h5'] as Uint8Array);
    const f = new h5wasm.File(inner, 'a');
    (f.get('layers/dense/vars') as InstanceType<typeof h5wasm.Group>).create_external_link('/etc/hostname', '/x', 'leak');
    f.close();
    entries['model.weights.h5'] = new Uint8Array(fs.readFileSync(inner));
    fs.writeFileSync(path.join(tmp, 'ext.keras'), zipSync(entries));
    await expect(readKeras3(path.join(tmp, 'ext.keras'))).rejects.toThrow(/ext\.keras: model\.weights\.h5: \/layers\/dense\/vars\/leak is an external link to \/etc\/hostname:\/x: links to other files are refused/);
  });

  it('a model.weights.h5 whose kernel has external raw storage is refused, naming the archive and the file', async () => {
    const p = path.join(tmp, 'ok5.keras');
    await writeKeras3(p, denseKerasConfig, weights());
    const { unzipSync } = await import('fflate');
    const entries = unzipSync(fs.readFileSync(p));
    const inner = path.join(tmp, 'inner5.weights.h5');
    fs.writeFileSync(inner, entries['model.weights.h5'] as Uint8Array);
    const f = new h5wasm.File(inner, 'a');
    f.create_dataset({ name: 'pad', data: new Uint8Array(4200).fill(0x5a), shape: [4200], dtype: '<B' });
    f.close();
    const buf = fs.readFileSync(inner);
    const kernelBytes = Buffer.from((weights().get('d/kernel')?.data as Float32Array).buffer);
    const secret = path.join(tmp, 'keras-secret.bin');
    fs.writeFileSync(secret, Buffer.from(new Float32Array([9, 9, 9, 9, 9, 9, 9, 9]).buffer));
    setExternalStorage(buf, contiguousLayoutAt(buf, buf.indexOf(kernelBytes), 32), buf.indexOf(Buffer.alloc(4200, 0x5a)), secret, 32);
    entries['model.weights.h5'] = new Uint8Array(buf);
    fs.writeFileSync(path.join(tmp, 'efl.keras'), zipSync(entries));
    const err = await readKeras3(path.join(tmp, 'efl.keras')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toMatch(new RegExp(`efl\\.keras: model\\.weights\\.h5: dataset /layers/dense/vars/0 stores its values in an external file \\(${secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\): external storage is refused`));
  });

  it('config.json errors found while analyzing the model name the archive (found by fuzzing: a layer without inbound nodes, config values nested too deep)', async () => {
    const { unzipSync } = await import('fflate');
    const good = path.join(tmp, 'analyze-ok.keras');
    await writeKeras3(good, denseKerasConfig, weights());
    const entries = unzipSync(fs.readFileSync(good));
    const config = JSON.parse(Buffer.from(entries['config.json'] as Uint8Array).toString('utf8'));
    const cases: Array<[string, (dense: { inbound_nodes: unknown; config: Record<string, unknown> }) => void, string]> = [
      ['no-inbound', (d) => (d.inbound_nodes = []), "layer 'd' has no inbound node"],
      ['nested', (d) => (d.config.kernel_regularizer = JSON.parse('['.repeat(300) + ']'.repeat(300))), 'model config values are nested more than 256 deep'],
    ];
    for (const [name, edit, text] of cases) {
      const c = structuredClone(config);
      edit(c.config.layers.find((l: { class_name: string }) => l.class_name === 'Dense'));
      const p = path.join(tmp, `analyze-${name}.keras`);
      fs.writeFileSync(p, zipSync({ ...entries, 'config.json': Buffer.from(JSON.stringify(c)) }));
      const err = await readKeras3(p).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(ModelFormatError);
      expect((err as Error).message).toBe(`${p}: ${text}`);
    }
  });

  it('a config.json nested 100,000 deep is a ModelFormatError naming the archive', async () => {
    let deep = '0';
    for (let i = 0; i < 100_000; i++) deep = `[${deep}]`;
    fs.writeFileSync(path.join(tmp, 'deep.keras'), zipSync({ 'config.json': Buffer.from(`{"class_name":"Functional","config":${deep}}`) }));
    await expect(readKeras3(path.join(tmp, 'deep.keras'))).rejects.toThrow(`${path.join(tmp, 'deep.keras')}: config.json: JSON nested more than 512 levels deep: refused`);
  });

  it('a Keras 3 config value nested 100,000 deep given to normalizeModelConfig is a ModelFormatError naming the file (the depth check runs before the Keras 3 → 2 conversion recurses)', () => {
    let deep: unknown = 0;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const k3 = {
      module: 'keras',
      class_name: 'Functional',
      config: {
        name: 'm',
        layers: [{ module: 'keras.layers', class_name: 'Dense', config: { name: 'd', units: 2, junk: deep }, inbound_nodes: [] }],
        input_layers: [['d', 0, 0]],
        output_layers: [['d', 0, 0]],
      },
    };
    let err: unknown;
    try {
      normalizeModelConfig(k3, '/models/deep.keras');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toBe('/models/deep.keras: model config: JSON nested more than 512 levels deep: refused');
    // 500 deep is within the limit: converted (no error about depth).
    let ok: unknown = 0;
    for (let i = 0; i < 500; i++) ok = [ok];
    const cfg = normalizeModelConfig({ ...k3, config: { ...k3.config, layers: [{ ...k3.config.layers[0], config: { name: 'd', units: 2, junk: ok } }] } }, 'x');
    expect(cfg.config.layers[0]?.config.name).toBe('d');
  });
});

describe.skipIf(!hasShared)('config and weight values found by fuzzing: refused at load, naming the layer or weight (they made every output NaN or escaped as a graph-builder RangeError)', () => {
  /** A copy of the shared V1 0.25 TF.js model, with `edit` applied to its parsed model.json and shards. */
  function mobilenetCopy(name: string, edit: (json: { modelTopology: { model_config: { config: { layers: Array<{ class_name: string; config: Record<string, unknown> }> } } } }, shards: Map<string, Buffer>) => void): string {
    const src = shared('models', 'mobilenet_v1_0.25_224');
    const d = dir(name);
    const json = JSON.parse(fs.readFileSync(path.join(src, 'model.json'), 'utf8'));
    const shards = new Map<string, Buffer>();
    for (const f of fs.readdirSync(src)) if (f !== 'model.json') shards.set(f, fs.readFileSync(path.join(src, f)));
    edit(json, shards);
    for (const [f, b] of shards) fs.writeFileSync(path.join(d, f), b);
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(json));
    return path.join(d, 'model.json');
  }

  it('a negative BatchNorm moving_variance (one flipped sign bit in a shard) is a WeightMismatchError naming the file and the weight', async () => {
    // group22 holds conv_dw_6_bn gamma, beta, moving_mean, moving_variance (64 values each): the variance starts at byte 768.
    const file = mobilenetCopy('negative-variance', (_json, shards) => {
      const b = shards.get('group22-shard1of1') as Buffer;
      expect(b.readFloatLE(768 + 4 * 2)).toBeGreaterThan(1);
      b[768 + 4 * 2 + 3]! ^= 0x80;
    });
    const err = await loadModel(file, { threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/conv_dw_6_bn\/moving_variance holds -25.4699[0-9]* at index 2: variance \+ epsilon \(0.001\) must be > 0/);
  });

  it('a BatchNorm gamma that folds to a scale beyond float32 (finite in the file) is a WeightMismatchError naming the layer and the values', async () => {
    // conv_dw_6_bn/gamma[2] = 3e38, / sqrt(25.47 + 0.001) is finite; moving_variance[2] = 1e-30 makes the scale 3e38 / 0.0316 > float32 max.
    const file = mobilenetCopy('huge-scale', (_json, shards) => {
      const b = shards.get('group22-shard1of1') as Buffer;
      b.writeFloatLE(3e38, 4 * 2);
      b.writeFloatLE(1e-30, 768 + 4 * 2);
    });
    const err = await loadModel(file, { threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/Weights of conv_dw_6_bn at index 2 \(gamma 3\.0*\d*e\+38, .*\) normalize to scale Infinity, .*not finite in float32/);
  });

  it('strides, dilation or kernel sizes beyond the graph limit (2^24) are an UnsupportedLayerError naming the layer, not a RangeError of the graph builder', async () => {
    for (const [key, value] of [['strides', [1, 16777217]], ['dilation_rate', [2147483647, 1]], ['kernel_size', 2 ** 31]] as const) {
      const file = mobilenetCopy(`limit-${key}`, (json) => {
        const conv = json.modelTopology.model_config.config.layers.find((l) => l.config.name === 'conv_pw_3')!;
        conv.config[key] = value;
      });
      const err = await loadModel(file, { threads: 1 }).catch((e: unknown) => e);
      expect(err, key).toBeInstanceOf(UnsupportedLayerError);
      expect((err as Error).message).toContain(`'conv_pw_3'`);
      expect((err as Error).message).toContain(`${key} must be a positive integer (at most 16777216) or a pair of them, got ${JSON.stringify(value)}`);
    }
  });

  it('an input dimension beyond the graph limit (2^24) is an UnsupportedLayerError naming the file and the input layer, not a GraphFormatError of the native reader', async () => {
    const file = mobilenetCopy('huge-input', (json) => {
      json.modelTopology.model_config.config.layers[0]!.config.batch_input_shape = [null, 224, 2 ** 31 - 1, 3];
    });
    const err = await loadModel(file, { threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedLayerError);
    expect(err).toMatchObject({ file, layerName: 'input_1', className: 'InputLayer' });
    expect((err as Error).message).toBe(`${file}: Unsupported layer 'input_1' of class InputLayer: input shape [224, 2147483647, 3] has a dimension over 16777216, the largest a graph holds`);
  });

  /** The error `loadModel` gives for a copy of the V1 0.25 model edited by `edit`. */
  async function loadError(name: string, edit: (layers: Array<{ class_name: string; config: Record<string, unknown> }>) => void): Promise<{ file: string; err: unknown }> {
    const file = mobilenetCopy(name, (json) => edit(json.modelTopology.model_config.config.layers));
    return { file, err: await loadModel(file, { threads: 1 }).catch((e: unknown) => e) };
  }
  const layerOf = (layers: Array<{ class_name: string; config: Record<string, unknown> }>, name: string): { class_name: string; config: Record<string, unknown> } =>
    layers.find((l) => l.config.name === name)!;

  it('an unsupported activation or ReLU option is an UnsupportedLayerError whose file and message name the model file and the layer', async () => {
    const act = await loadError('gelu', (layers) => {
      layerOf(layers, 'conv_dw_1_relu').config.activation = 'gelu';
    });
    expect(act.err).toBeInstanceOf(UnsupportedLayerError);
    expect(act.err).toMatchObject({ file: act.file, layerName: 'conv_dw_1_relu', className: 'Activation', detail: 'activation "gelu"' });
    expect((act.err as Error).message).toBe(`${act.file}: Unsupported layer 'conv_dw_1_relu' of class Activation: activation "gelu"`);
    // The activation of a convolution goes through the same parser (lib/keras/activations.ts).
    const convAct = await loadError('conv-elu', (layers) => {
      layerOf(layers, 'conv_pw_5').config.activation = 'elu';
    });
    expect(convAct.err).toBeInstanceOf(UnsupportedLayerError);
    expect((convAct.err as UnsupportedLayerError).file).toBe(convAct.file);
    expect((convAct.err as Error).message).toBe(`${convAct.file}: Unsupported layer 'conv_pw_5' of class Conv2D: activation "elu"`);
    const leaky = await loadError('leaky', (layers) => {
      const l = layerOf(layers, 'conv1_relu');
      l.class_name = 'ReLU';
      l.config = { name: 'conv1_relu', trainable: true, max_value: 6, negative_slope: 0.1, threshold: 0 };
    });
    expect(leaky.err).toBeInstanceOf(UnsupportedLayerError);
    expect((leaky.err as UnsupportedLayerError).file).toBe(leaky.file);
    expect((leaky.err as Error).message).toBe(`${leaky.file}: Unsupported layer 'conv1_relu' of class ReLU: negative_slope 0.1 (only 0)`);
    // A class with no implementation at all.
    const cls = await loadError('prelu', (layers) => {
      layerOf(layers, 'conv_pw_2_relu').class_name = 'PReLU';
    });
    expect(cls.err).toBeInstanceOf(UnsupportedLayerError);
    expect((cls.err as Error).message).toBe(`${cls.file}: Unsupported layer 'conv_pw_2_relu' of class PReLU: no implementation for this layer class`);
    // Refused while reading the graph (lib/keras/model-config.ts), before any layer is analysed.
    const shared = await loadError('shared-layer', (layers) => {
      const l = layerOf(layers, 'conv_pw_4_relu') as { inbound_nodes?: unknown[] };
      l.inbound_nodes = [...l.inbound_nodes!, ...l.inbound_nodes!];
    });
    expect(shared.err).toBeInstanceOf(UnsupportedLayerError);
    expect((shared.err as UnsupportedLayerError).file).toBe(shared.file);
    expect((shared.err as Error).message).toBe(`${shared.file}: Unsupported layer 'conv_pw_4_relu' of class Activation: a layer called more than once (shared layer)`);
  });

  it('a kernel or pool larger than its input is a ModelFormatError naming the file, the layer and both sizes (not a RangeError in the parameter template)', async () => {
    const kernel = await loadError('kernel-too-large', (layers) => {
      layers[0]!.config.batch_input_shape = [null, 2, 2, 3];
      layerOf(layers, 'conv1').config.padding = 'valid';
    });
    expect(kernel.err).toBeInstanceOf(ModelFormatError);
    expect((kernel.err as ModelFormatError).file).toBe(kernel.file);
    expect((kernel.err as Error).message).toBe(
      `${kernel.file}: Conv2D layer 'conv1' has a 3x3 kernel larger than its 2x2 input: pass a larger input shape (inputShape; --input-size on the command line)`,
    );
    const dilated = await loadError('dilated-kernel-too-large', (layers) => {
      const c = layerOf(layers, 'conv_dw_13');
      c.config.padding = 'valid';
      c.config.dilation_rate = [4, 4];
    });
    expect(dilated.err).toBeInstanceOf(ModelFormatError);
    expect((dilated.err as Error).message).toBe(
      `${dilated.file}: DepthwiseConv2D layer 'conv_dw_13' has a 3x3 kernel with dilation 4x4 (9x9) larger than its 7x7 input: pass a larger input shape (inputShape; --input-size on the command line)`,
    );
    const pool = await loadError('pool-too-large', (layers) => {
      const l = layerOf(layers, 'global_average_pooling2d_1');
      l.class_name = 'AveragePooling2D';
      l.config = { name: 'global_average_pooling2d_1', trainable: true, pool_size: [8, 8], padding: 'valid' };
    });
    expect(pool.err).toBeInstanceOf(ModelFormatError);
    expect((pool.err as ModelFormatError).file).toBe(pool.file);
    expect((pool.err as Error).message).toBe(
      `${pool.file}: AveragePooling2D layer 'global_average_pooling2d_1' has an 8x8 pool larger than its 7x7 input: pass a larger input shape (inputShape; --input-size on the command line)`,
    );
  });

  it('a negative or non-numeric BatchNorm epsilon is an UnsupportedLayerError naming the layer', async () => {
    // -1e999 is valid JSON for -Infinity (JSON.stringify would show it as null).
    for (const [eps, shown] of [[-0.999, '-0.999'], ['x', '"x"'], ['-1e999', '-Infinity']] as const) {
      const file = mobilenetCopy(`epsilon-${shown}`, (json) => {
        const bn = json.modelTopology.model_config.config.layers.find((l) => l.config.name === 'conv_pw_6_bn')!;
        bn.config.epsilon = eps === '-1e999' ? 'NEG_INF' : eps;
      });
      if (eps === '-1e999') fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"NEG_INF"', '-1e999'));
      const err = await loadModel(file, { threads: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsupportedLayerError);
      expect((err as Error).message).toContain(`'conv_pw_6_bn'`);
      expect((err as Error).message).toContain(`epsilon ${shown} (must be a finite number >= 0)`);
    }
  });

  it('the unchanged copy loads and gives finite probabilities (the edits above are the only difference)', async () => {
    const model = await loadModel(mobilenetCopy('unchanged', () => {}), { threads: 1 });
    try {
      const y = await model.predict(new Float32Array(224 * 224 * 3).fill(0.25));
      expect(y.every((v) => Number.isFinite(v))).toBe(true);
    } finally {
      model.dispose();
    }
  });
});
