import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp, { type Sharp, type SharpOptions } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageDecodeError } from '../lib/errors.js';
import { decodeImage, loadImageTensor, pixelsToTensor } from '../lib/image.js';
import { hasShared, shared } from './helpers/shared.js';
import { pngHeaderBomb } from './helpers/png.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-image-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function solid(width: number, height: number, channels: 1 | 2 | 3 | 4, value: number[]): Buffer {
  const b = Buffer.alloc(width * height * channels);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < channels; c++) b[i * channels + c] = value[c]!;
  return b;
}

function pixel(rgb: Uint8Array, width: number, x: number, y: number): number[] {
  const i = (y * width + x) * 3;
  return [rgb[i]!, rgb[i + 1]!, rgb[i + 2]!];
}

function expectClose(actual: number[], expected: number[], tol: number): void {
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!), `channel ${i}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tol);
}

describe.skipIf(!hasShared)('decodeImage reproduces the reference pipeline (../shared/README.md)', () => {
  it('is byte-identical to sharp removeAlpha/toColourspace/resize cover on all 250 sample images (EXIF rotate + flatten change nothing there)', async () => {
    const dir = shared('images', 'imagenet-sample');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.JPEG'));
    expect(files).toHaveLength(250);
    const differing: string[] = [];
    for (const f of files) {
      const p = path.join(dir, f);
      const [ours, ref] = await Promise.all([
        decodeImage(p, { width: 224, height: 224 }),
        sharp(p).removeAlpha().toColourspace('srgb').resize(224, 224, { fit: 'cover', position: 'centre' }).raw().toBuffer(),
      ]);
      if (!ours.equals(ref)) differing.push(f);
    }
    expect(differing).toEqual([]);
  });

  it("gives exactly ../shared/reference/cat.224.f32 for cat.jpg ('tf' preprocessing)", async () => {
    const ref = fs.readFileSync(shared('reference', 'cat.224.f32'));
    const refF32 = new Float32Array(ref.buffer, ref.byteOffset, ref.byteLength / 4);
    const ours = await loadImageTensor(shared('images', 'cat.jpg'), { width: 224, height: 224, preprocessing: 'tf' });
    expect(ours.length).toBe(224 * 224 * 3);
    let maxDiff = 0;
    for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - refF32[i]!));
    expect(maxDiff).toBe(0);
  });

  it("'none' gives the raw 0..255 bytes and writes into a caller's slice only", async () => {
    const file = shared('images', 'cat.jpg');
    const rgb = await decodeImage(file, { width: 224, height: 224 });
    const n = 224 * 224 * 3;
    const batch = new Float32Array(3 * n).fill(-7);
    const r = await loadImageTensor(file, { width: 224, height: 224, preprocessing: 'none' }, batch, n);
    expect(r).toBe(batch);
    for (let i = 0; i < n; i++) {
      if (batch[n + i] !== rgb[i]) throw new Error(`value ${i}: ${batch[n + i]} != ${rgb[i]}`);
    }
    expect(batch.subarray(0, n).every((x) => x === -7)).toBe(true);
    expect(batch.subarray(2 * n).every((x) => x === -7)).toBe(true);
  });
});

describe('pixel conversions', () => {
  it("'tf' maps 0 → -1, 255 → 1, 127.5 midpoint, in float32", () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const t = pixelsToTensor(bytes, 'tf');
    expect(t[0]).toBe(-1);
    expect(t[255]).toBe(1);
    for (let i = 0; i < 256; i++) expect(t[i]).toBe(Math.fround(i / 127.5 - 1));
    const n = pixelsToTensor(bytes, 'none');
    for (let i = 0; i < 256; i++) expect(n[i]).toBe(i);
  });

  it('rejects bad arguments with the parameter template', () => {
    expect(() => pixelsToTensor(new Uint8Array(3), 'caffe' as 'tf')).toThrow('Expected one of "tf", "none" for preprocessing but received "caffe"');
    expect(() => pixelsToTensor(new Uint8Array(6), 'tf', new Float32Array(5))).toThrow(RangeError);
    expect(() => pixelsToTensor([1, 2, 3] as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('colour handling', () => {
  it('applies EXIF orientation (orientation 6 = rotate 90° clockwise)', async () => {
    // Stored 64 wide × 32 high: left half red, right half blue. Displayed (rotated): top red, bottom blue.
    const raw = Buffer.alloc(64 * 32 * 3);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 64; x++) raw.set(x < 32 ? [255, 0, 0] : [0, 0, 255], (y * 64 + x) * 3);
    const jpeg = await sharp(raw, { raw: { width: 64, height: 32, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    const rgb = await decodeImage(jpeg, { width: 32, height: 32, resize: 'squash' });
    expectClose(pixel(rgb, 32, 16, 3), [255, 0, 0], 12);
    expectClose(pixel(rgb, 32, 16, 28), [0, 0, 255], 12);
    // Without orientation the same pixels sit left/right.
    const plain = await sharp(raw, { raw: { width: 64, height: 32, channels: 3 } }).jpeg({ quality: 100 }).toBuffer();
    const rgb2 = await decodeImage(plain, { width: 32, height: 32, resize: 'squash' });
    expectClose(pixel(rgb2, 32, 3, 16), [255, 0, 0], 12);
    expectClose(pixel(rgb2, 32, 28, 16), [0, 0, 255], 12);
  });

  it('flattens alpha onto white by default; background colour or drop on request', async () => {
    // Left half: transparent with stored colour black; right half: 50% opaque red.
    const raw = Buffer.alloc(16 * 8 * 4);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 16; x++) raw.set(x < 8 ? [0, 0, 0, 0] : [255, 0, 0, 128], (y * 16 + x) * 4);
    const png = await sharp(raw, { raw: { width: 16, height: 8, channels: 4 } }).png().toBuffer();
    const white = await decodeImage(png, { width: 16, height: 8, resize: 'squash' });
    expect(pixel(white, 16, 2, 4)).toEqual([255, 255, 255]);
    expectClose(pixel(white, 16, 13, 4), [255, 127, 127], 2);
    const black = await decodeImage(png, { width: 16, height: 8, resize: 'squash', background: '#000000' });
    expect(pixel(black, 16, 2, 4)).toEqual([0, 0, 0]);
    expectClose(pixel(black, 16, 13, 4), [128, 0, 0], 2);
    const dropped = await decodeImage(png, { width: 16, height: 8, resize: 'squash', background: 'drop' });
    expect(pixel(dropped, 16, 2, 4)).toEqual([0, 0, 0]);
    expect(pixel(dropped, 16, 13, 4)).toEqual([255, 0, 0]);
  });

  it('expands greyscale (and grey + alpha) to 3 equal channels', async () => {
    const grey = await sharp(solid(10, 10, 1, [100]), { raw: { width: 10, height: 10, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const rgb = await decodeImage(grey, { width: 4, height: 4 });
    expect(rgb.length).toBe(4 * 4 * 3);
    expect([...rgb].every((x) => x === 100)).toBe(true);
    const greyAlpha = await sharp(solid(10, 10, 2, [100, 255]), { raw: { width: 10, height: 10, channels: 2 } }).png().toBuffer();
    const rgb2 = await decodeImage(greyAlpha, { width: 4, height: 4 });
    expect([...rgb2].every((x) => x === 100)).toBe(true);
  });

  it('converts an embedded ICC profile (Display P3) to sRGB', async () => {
    const srgb = [200, 60, 40];
    const src = await sharp(solid(16, 16, 3, srgb), { raw: { width: 16, height: 16, channels: 3 } })
      .withIccProfile('p3')
      .png()
      .toBuffer();
    const meta = await sharp(src).metadata();
    expect(meta.icc).toBeDefined();
    // The stored numbers are P3 values, visibly different from the sRGB ones…
    const stored = await sharp(src, { ignoreIcc: true }).raw().toBuffer();
    expect(Math.abs(stored[0]! - srgb[0]!) + Math.abs(stored[1]! - srgb[1]!) + Math.abs(stored[2]! - srgb[2]!)).toBeGreaterThan(10);
    // …and decoding brings them back to sRGB.
    const rgb = await decodeImage(src, { width: 8, height: 8 });
    expectClose(pixel(rgb, 8, 4, 4), srgb, 3);
  });

  it('reduces 16-bit PNG to 8 bits', async () => {
    const raw16 = new Uint16Array(8 * 8 * 3).fill(0x8080);
    const png16 = await sharp(Buffer.from(raw16.buffer), { raw: { width: 8, height: 8, channels: 3, premultiplied: false } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    const rgb = await decodeImage(png16, { width: 8, height: 8 });
    expect(rgb.length).toBe(8 * 8 * 3);
    expectClose(pixel(rgb, 8, 3, 3), [128, 128, 128], 1);
  });
});

describe('resize modes', () => {
  // 200×100: left quarter red, middle half green, right quarter blue.
  const raw = Buffer.alloc(200 * 100 * 3);
  for (let y = 0; y < 100; y++) for (let x = 0; x < 200; x++) raw.set(x < 50 ? [255, 0, 0] : x < 150 ? [0, 255, 0] : [0, 0, 255], (y * 200 + x) * 3);
  const img = { data: raw, width: 200, height: 100, channels: 3 as const };

  it("'crop' (default) scales the shorter side and centre-crops: only green remains", async () => {
    const rgb = await decodeImage(img, { width: 50, height: 50 });
    expectClose(pixel(rgb, 50, 1, 25), [0, 255, 0], 2);
    expectClose(pixel(rgb, 50, 48, 25), [0, 255, 0], 2);
  });

  it("'squash' keeps the whole image (Keras load_img target_size)", async () => {
    const rgb = await decodeImage(img, { width: 50, height: 50, resize: 'squash' });
    expectClose(pixel(rgb, 50, 2, 25), [255, 0, 0], 2);
    expectClose(pixel(rgb, 50, 25, 25), [0, 255, 0], 2);
    expectClose(pixel(rgb, 50, 47, 25), [0, 0, 255], 2);
  });

  it('raw pixels equal the same pixels encoded as PNG', async () => {
    const png = await sharp(raw, { raw: { width: 200, height: 100, channels: 3 } }).png().toBuffer();
    const a = await decodeImage(img, { width: 64, height: 48, resize: 'squash' });
    const b = await decodeImage(png, { width: 64, height: 48, resize: 'squash' });
    expect(a.equals(b)).toBe(true);
  });

  it('a 1×1 image is upscaled to the full size', async () => {
    const png = await sharp(solid(1, 1, 3, [10, 20, 30]), { raw: { width: 1, height: 1, channels: 3 } }).png().toBuffer();
    const file = path.join(tmp, 'one.png');
    fs.writeFileSync(file, png);
    const rgb = await decodeImage(file, { width: 224, height: 224 });
    expect(rgb.length).toBe(224 * 224 * 3);
    expectClose(pixel(rgb, 224, 0, 0), [10, 20, 30], 1);
    expectClose(pixel(rgb, 224, 223, 223), [10, 20, 30], 1);
  });
});

describe('formats sharp decodes', () => {
  const raw = solid(40, 30, 3, [30, 140, 220]);
  const encoders: Record<string, (s: Sharp) => Sharp> = {
    jpeg: (s) => s.jpeg({ quality: 95 }),
    png: (s) => s.png(),
    webp: (s) => s.webp({ lossless: true }),
    gif: (s) => s.gif(),
    tiff: (s) => s.tiff(),
    avif: (s) => s.avif({ lossless: true }),
  };
  for (const [name, enc] of Object.entries(encoders)) {
    it(`decodes ${name}`, async () => {
      const buf = await enc(sharp(raw, { raw: { width: 40, height: 30, channels: 3 } })).toBuffer();
      const rgb = await decodeImage(buf, { width: 8, height: 8 });
      expectClose(pixel(rgb, 8, 4, 4), [30, 140, 220], name === 'gif' ? 12 : 4);
    });
  }

  it('takes the first frame of an animated GIF', async () => {
    const frames = Buffer.concat([solid(8, 8, 3, [255, 0, 0]), solid(8, 8, 3, [0, 0, 255])]);
    const gif = await sharp(frames, { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } } as SharpOptions)
      .gif()
      .toBuffer();
    expect((await sharp(gif, { pages: -1 }).metadata()).pages).toBe(2);
    const rgb = await decodeImage(gif, { width: 8, height: 8 });
    expectClose(pixel(rgb, 8, 4, 4), [255, 0, 0], 16);
  });
});

describe('bad input gives ImageDecodeError naming the file', () => {
  async function expectDecodeError(src: string | Uint8Array, pattern: RegExp, name?: string): Promise<void> {
    const err = await decodeImage(src, { width: 224, height: 224 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toMatch(pattern);
    if (name !== undefined) {
      expect((err as ImageDecodeError).file).toBe(name);
      expect((err as Error).message.startsWith(`${name}: `)).toBe(true);
    }
  }

  it('not an image', async () => {
    const f = path.join(tmp, 'notes.jpg');
    fs.writeFileSync(f, 'this is plain text, not a JPEG\n'.repeat(10));
    await expectDecodeError(f, /not an image|unsupported image format/i, f);
  });

  it('zero-byte file and empty buffer', async () => {
    const f = path.join(tmp, 'empty.png');
    fs.writeFileSync(f, '');
    await expectDecodeError(f, /empty file/, f);
    await expectDecodeError(new Uint8Array(0), /empty buffer/);
  });

  it('a directory', async () => {
    const d = path.join(tmp, 'adir.jpg');
    fs.mkdirSync(d, { recursive: true });
    await expectDecodeError(d, /is a directory/, d);
  });

  it('a missing file and a dangling symlink', async () => {
    const missing = path.join(tmp, 'missing.jpg');
    await expectDecodeError(missing, /file not found/, missing);
    const link = path.join(tmp, 'dangling.jpg');
    fs.symlinkSync(path.join(tmp, 'nowhere.jpg'), link);
    await expectDecodeError(link, /file not found/, link);
  });

  it.skipIf(process.getuid?.() === 0)('an unreadable file (chmod 000; skipped as root, who can read it)', async () => {
    const f = path.join(tmp, 'secret.png');
    fs.writeFileSync(f, await sharp(solid(2, 2, 3, [1, 2, 3]), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer());
    fs.chmodSync(f, 0o000);
    await expectDecodeError(f, /cannot read file/, f);
  });

  it('a FIFO is refused without blocking', async () => {
    const fifo = path.join(tmp, 'pipe.jpg');
    const { execFileSync } = await import('node:child_process');
    try {
      execFileSync('mkfifo', [fifo]);
    } catch {
      return; // no mkfifo on this system
    }
    await expectDecodeError(fifo, /not a regular file/, fifo);
  });

  it('a 20000×20000 PNG header (decompression bomb) is refused by the pixel limit', async () => {
    const bomb = pngHeaderBomb(20000, 20000);
    expect(bomb.length).toBeLessThan(2000);
    const meta = await sharp(bomb, { limitInputPixels: false }).metadata();
    expect([meta.width, meta.height]).toEqual([20000, 20000]);
    const f = path.join(tmp, 'bomb.png');
    fs.writeFileSync(f, bomb);
    const before = process.memoryUsage().rss;
    await expectDecodeError(f, /too large|pixel limit/i, f);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    // A lower explicit limit refuses smaller images too.
    const small = await sharp(solid(100, 100, 3, [0, 0, 0]), { raw: { width: 100, height: 100, channels: 3 } }).png().toBuffer();
    await expect(decodeImage(small, { width: 8, height: 8, limitInputPixels: 5000 })).rejects.toThrow(ImageDecodeError);
  });

  it('a truncated JPEG', async () => {
    const jpeg = await sharp(solid(64, 64, 3, [50, 100, 150]), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    const f = path.join(tmp, 'truncated.jpg');
    fs.writeFileSync(f, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    await expectDecodeError(f, /cannot decode image/, f);
  });

  it('invalid raw pixels and options are parameter errors', async () => {
    await expect(decodeImage({ data: new Uint8Array(5), width: 2, height: 2, channels: 3 }, { width: 8, height: 8 })).rejects.toThrow(
      'Expected 12 bytes (width × height × channels) for image.data but received Uint8Array(5)',
    );
    await expect(decodeImage({ data: new Uint8Array(10), width: 2, height: 1, channels: 5 as 3 }, { width: 8, height: 8 })).rejects.toThrow(RangeError);
    await expect(decodeImage(42 as unknown as string, { width: 8, height: 8 })).rejects.toThrow(TypeError);
    await expect(decodeImage(new Uint8Array(4), { width: 0, height: 8 })).rejects.toThrow('Expected positive integer for width but received 0');
    await expect(decodeImage(new Uint8Array(4), { width: 8, height: 8, resize: 'stretch' as 'crop' })).rejects.toThrow(
      'Expected one of "crop", "squash" for resize but received "stretch"',
    );
  });
});
