/**
 * Hostile images (issue 14), crafted here: a 35-byte GIF declaring
 * 16000×16000 (1.1 GB per decode before), an SVG referencing an image beside
 * it, an SVG whose href is a FIFO (hung a libuv thread forever before), the
 * SVG refusal option, the per-image byte limit, a labels file that is
 * /dev/zero or a FIFO.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, declaredImageBytes } from '../lib/image.js';
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
