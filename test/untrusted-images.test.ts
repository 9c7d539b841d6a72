/**
 * Hostile images (issue 14), crafted here: a 35-byte GIF declaring
 * 16000×16000 (1.1 GB per decode before), an SVG referencing an image beside
 * it, an SVG whose href is a FIFO (hung a libuv thread forever before), the
 * SVG refusal option, the per-image byte limit, the decode time limit (a
 * valid 3.6-gigapixel PNG of 3.5 MB), the shared decode budget (images that
 * each fit but together do not are decoded one after the other), a labels
 * file that is /dev/zero or a FIFO.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeBudgetStats, decodeImage, declaredImageBytes } from '../lib/image.js';
import { pngZeros } from './helpers/png.js';
import { resolveLabels } from '../lib/labels.js';
import { ImageDecodeError } from '../lib/errors.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-untrusted-img-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A GIF whose screen and image descriptors declare w×h, with one LZW block: 35 bytes. */
function gifBomb(w: number, h: number): Buffer {
  return Buffer.from([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, w & 255, w >> 8, h & 255, h >> 8, 0x80, 0, 0, 0, 0, 0, 255, 255, 255, 0x2c, 0, 0, 0, 0, w & 255, w >> 8, h & 255, h >> 8, 0, 0x02, 0x02, 0x4c, 0x01, 0x00, 0x3b]);
}

describe('images: memory and time stay bounded', () => {
  it('a 35-byte GIF declaring 16000×16000 is refused from its header, before decoding', async () => {
    const gif = gifBomb(16000, 16000);
    expect(gif.length).toBe(35);
    const meta = await sharp(gif).metadata();
    expect([meta.width, meta.height]).toEqual([16000, 16000]);
    expect(declaredImageBytes(meta)).toBe(16000 * 16000 * 3);
    const f = path.join(tmp, 'bomb.gif');
    fs.writeFileSync(f, gif);
    const before = process.memoryUsage().rss;
    const err = await decodeImage(f, { width: 224, height: 224 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toBe(
      `${f}: image too large: 16000x16000 with 3 channels needs 768000000 bytes decoded, more than the limit of 536870912 bytes (raise maxImageBytes or MOBILENET_MAX_IMAGE_BYTES)`,
    );
    expect((err as ImageDecodeError).reason).toBe('too-many-bytes');
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024);
  });

  it('limitInputPixels is checked on the header, naming the declared size (reason too-many-pixels)', async () => {
    const gif = gifBomb(3000, 2000);
    const err = await decodeImage(gif, { width: 8, height: 8, limitInputPixels: 5_999_999 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toBe('<buffer of 35 bytes>: image too large: 3000x2000 = 6000000 pixels, more than the limit of 5999999 pixels (raise limitInputPixels)');
    expect((err as ImageDecodeError).reason).toBe('too-many-pixels');
    // At the limit it is decoded.
    const atLimit = await decodeImage(gif, { width: 8, height: 8, limitInputPixels: 6_000_000 });
    expect(atLimit).toHaveLength(8 * 8 * 3);
  });

  it('maxImageBytes lowers the per-image budget; an image within it decodes', async () => {
    const png = await sharp({ create: { width: 100, height: 100, channels: 3, background: '#123456' } }).png().toBuffer();
    await expect(decodeImage(png, { width: 8, height: 8, maxImageBytes: 29_999 })).rejects.toThrow(/needs 30000 bytes decoded, more than the limit of 29999 bytes/);
    const out = await decodeImage(png, { width: 8, height: 8, maxImageBytes: 30_000 });
    expect([out[0], out[1], out[2]]).toEqual([0x12, 0x34, 0x56]);
    await expect(decodeImage(png, { width: 8, height: 8, maxImageBytes: 0 })).rejects.toThrow('Expected positive integer for maxImageBytes but received 0');
    await expect(decodeImage(png, { width: 8, height: 8, decodeTimeoutSeconds: -1 })).rejects.toThrow('Expected positive integer for decodeTimeoutSeconds but received -1');
  });

  it('the decode time limit fires on a decode that would take minutes (ImageDecodeError, reason timeout); the process stays healthy', async () => {
    // 60000×60032 black pixels in 3.5 MB; the limits are raised so that only the time limit stands in the way.
    const png = pngZeros(60000, 60032);
    expect(png.length).toBeLessThan(4 << 20);
    const meta = await sharp(png, { limitInputPixels: false }).metadata();
    expect([meta.width, meta.height]).toEqual([60000, 60032]);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    // libvips checks the limit when an output tile is done: a 1024×1024 output has small tiles (a 224×224 one is one or
    // two tiles, so the limit would only be checked after most of the work).
    const err = await decodeImage(png, { width: 1024, height: 1024, decodeTimeoutSeconds: 1, limitInputPixels: 4e9, maxImageBytes: 2 ** 34 }).catch((e: unknown) => e);
    clearInterval(timer);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as ImageDecodeError).reason).toBe('timeout');
    expect((err as Error).message).toMatch(/^<buffer of \d+ bytes>: decoding took too long: more than 1 s \(libvips: timeout: \d+% complete\) \(raise decodeTimeoutSeconds or MOBILENET_DECODE_TIMEOUT\)$/);
    // The event loop kept running during the decode, the budget is released, and the next image decodes.
    expect(ticks).toBeGreaterThan(0);
    expect(decodeBudgetStats()).toMatchObject({ inFlight: 0, running: 0, waiting: 0 });
    const ok = await decodeImage(await sharp({ create: { width: 40, height: 30, channels: 3, background: '#0a141e' } }).png().toBuffer(), { width: 8, height: 8, decodeTimeoutSeconds: 1 });
    expect([ok[0], ok[1], ok[2]]).toEqual([10, 20, 30]);
  });

  it('images that each fit the budget but together exceed the decode bytes in flight are decoded one after the other, all correctly', async () => {
    // A module instance whose in-flight budget (MOBILENET_MAX_DECODE_BYTES, read once at load) is 8 MiB.
    vi.resetModules();
    vi.stubEnv('MOBILENET_MAX_DECODE_BYTES', String(8 << 20));
    try {
      const fresh = await import('../lib/image.js');
      expect(fresh.decodeBudgetStats().limit).toBe(8 << 20);
      const colours = [[200, 10, 10], [10, 200, 10], [10, 10, 200], [200, 200, 10], [10, 200, 200], [200, 10, 200]] as const;
      // 1200×1200 RGB: 4,320,000 bytes declared each (under the 512 MiB per-image budget and under 8 MiB alone; two are over).
      const images = await Promise.all(colours.map(([r, g, b]) => sharp({ create: { width: 1200, height: 1200, channels: 3, background: { r, g, b } } }).png().toBuffer()));
      expect(declaredImageBytes(await sharp(images[0]).metadata())).toBe(4_320_000);
      fresh.decodeBudgetStats(true);
      const outs = await Promise.all(images.map((img) => fresh.decodeImage(img, { width: 16, height: 16 })));
      const stats = fresh.decodeBudgetStats();
      expect(stats.peakRunning).toBe(1);
      expect(stats.peakInFlight).toBe(4_320_000);
      expect(stats).toMatchObject({ inFlight: 0, running: 0, waiting: 0 });
      outs.forEach((out, i) => {
        expect(out).toHaveLength(16 * 16 * 3);
        for (let p = 0; p < out.length; p += 3) expect([out[p], out[p + 1], out[p + 2]]).toEqual(colours[i]);
      });
      // Three images of a third of the size fit together: they are not serialized beyond the budget (invariant: never over it).
      const thirds = await Promise.all(colours.slice(0, 3).map(([r, g, b]) => sharp({ create: { width: 690, height: 690, channels: 3, background: { r, g, b } } }).png().toBuffer()));
      fresh.decodeBudgetStats(true);
      await Promise.all(thirds.map((img) => fresh.decodeImage(img, { width: 16, height: 16 })));
      expect(fresh.decodeBudgetStats().peakInFlight).toBeLessThanOrEqual(8 << 20);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });

  it('an encoded file larger than maxImageFileBytes is refused before it is read', async () => {
    const f = path.join(tmp, 'big.png');
    fs.writeFileSync(f, await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } }).png().toBuffer());
    const size = fs.statSync(f).size;
    await expect(decodeImage(f, { width: 8, height: 8, maxImageFileBytes: size - 1 })).rejects.toThrow(`is ${size} bytes, more than the limit of ${size - 1} bytes`);
  });
});

describe('SVG input', () => {
  const svgWithImage = (href: string): string =>
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64"><rect width="64" height="64" fill="#ffffff"/><image x="0" y="0" width="64" height="64" xlink:href="${href}"/></svg>`;

  it('does not draw an image file referenced beside it (decoded from memory, no base directory)', async () => {
    const d = fs.mkdtempSync(path.join(tmp, 'svg-'));
    fs.writeFileSync(path.join(d, 'red.png'), await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ff0000' } }).png().toBuffer());
    const f = path.join(d, 'pic.svg');
    fs.writeFileSync(f, svgWithImage('red.png'));
    // librsvg itself, given the file path, follows the reference: the red image is drawn.
    const direct = await sharp(f).resize(8, 8).raw().toBuffer();
    expect([direct[0], direct[1], direct[2]]).toEqual([255, 0, 0]);
    // decodeImage does not.
    const out = await decodeImage(f, { width: 8, height: 8 });
    expect([out[0], out[1], out[2]]).toEqual([255, 255, 255]);
  });

  it('an href naming a FIFO beside it does not hang', async () => {
    const d = fs.mkdtempSync(path.join(tmp, 'svgfifo-'));
    execFileSync('mkfifo', [path.join(d, 'pipe.png')]);
    const f = path.join(d, 'pic.svg');
    fs.writeFileSync(f, svgWithImage('pipe.png'));
    const out = await decodeImage(f, { width: 8, height: 8 });
    expect([out[0], out[1], out[2]]).toEqual([255, 255, 255]);
  });

  const blurChain = (n: number, size = 2000): Buffer =>
    Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><filter id="f" x="0" y="0" width="1" height="1">` +
        Array.from({ length: n }, (_, i) => `<feGaussianBlur in="${i > 0 ? `b${i - 1}` : 'SourceGraphic'}" stdDeviation="20" result="b${i}"/>`).join('') +
        `</filter><rect width="${size}" height="${size}" fill="#ff0000" filter="url(#f)"/></svg>`,
    );

  it('an SVG chaining 20,000 blurs is refused before rendering (the time limit is checked between tiles only: it ran minutes)', async () => {
    const err = await decodeImage(blurChain(20_000), { width: 8, height: 8 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as ImageDecodeError).reason).toBe('timeout');
    expect((err as Error).message).toMatch(/^<buffer of \d+ bytes>: SVG filters would take too long to render: 20000 filter primitives × 1 filtered elements × 4000000 pixels is more than the limit of 2147483648 \(refused before rendering\)$/);
    // One blur used by 5,000 elements: the same.
    const many = Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="1000"><filter id="f"><feGaussianBlur stdDeviation="9"/></filter>${'<rect width="1000" height="1000" fill="#00f" filter="url(#f)"/>'.repeat(5000)}</svg>`,
    );
    await expect(decodeImage(many, { width: 8, height: 8 })).rejects.toThrow(/1 filter primitives × 5000 filtered elements × 1000000 pixels/);
    // A few blurs are rendered (a blurred uniform red square stays red in its centre).
    const out = await decodeImage(blurChain(3, 200), { width: 8, height: 8 });
    expect(out[(4 * 8 + 4) * 3]).toBeGreaterThan(200);
    expect(out[(4 * 8 + 4) * 3 + 1]).toBeLessThan(60);
  });

  it('allowSvg: false refuses SVG input (files and buffers); other formats still decode', async () => {
    const svg = Buffer.from(svgWithImage('none.png'));
    await expect(decodeImage(svg, { width: 8, height: 8, allowSvg: false })).rejects.toThrow('<buffer of');
    await expect(decodeImage(svg, { width: 8, height: 8, allowSvg: false })).rejects.toThrow(/SVG input is refused \(allowSvg: false\)/);
    await expect(decodeImage(svg, { width: 8, height: 8, allowSvg: false })).rejects.toMatchObject({ reason: 'svg-refused' });
    const png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#00ff00' } }).png().toBuffer();
    const out = await decodeImage(png, { width: 2, height: 2, allowSvg: false });
    expect([out[0], out[1], out[2]]).toEqual([0, 255, 0]);
  });

  it("allowSvg: false recognises SVG from its bytes, also when libvips' SVG loader is blocked (as `mobilenet serve` does)", async () => {
    const svg = Buffer.from(`\ufeff\n<?xml version="1.0"?>\n${svgWithImage('none.png')}`);
    sharp.block({ operation: ['VipsForeignLoadSvg'] });
    try {
      // Without the sniff libvips would only say "unsupported image format".
      await expect(decodeImage(svg, { width: 8, height: 8 })).rejects.toMatchObject({ reason: 'undecodable' });
      const err = await decodeImage(svg, { width: 8, height: 8, allowSvg: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImageDecodeError);
      expect((err as ImageDecodeError).reason).toBe('svg-refused');
    } finally {
      sharp.unblock({ operation: ['VipsForeignLoadSvg'] });
    }
  });
});

describe('labels files: only regular files, size checked', () => {
  it('/dev/zero is refused at once (not 4 GB read synchronously)', () => {
    expect(() => resolveLabels('/dev/zero', 3)).toThrow(/\/dev\/zero.*is a character device, not a regular file/);
  });

  it('a FIFO is refused without blocking the event loop', () => {
    const fifo = path.join(tmp, 'labels.txt');
    execFileSync('mkfifo', [fifo]);
    expect(() => resolveLabels(fifo, 3)).toThrow(/is a FIFO \(named pipe\), not a regular file/);
  });

  it('a labels file larger than 16 MiB is refused; a normal one is read', () => {
    const big = path.join(tmp, 'big.txt');
    fs.writeFileSync(big, Buffer.alloc(16 * 1024 * 1024 + 1, 0x61));
    expect(() => resolveLabels(big, 3)).toThrow(/more than the limit of 16777216 bytes/);
    const ok = path.join(tmp, 'ok.txt');
    fs.writeFileSync(ok, 'a\nb\nc\n');
    expect(resolveLabels(ok, 3)).toEqual(['a', 'b', 'c']);
  });
});
