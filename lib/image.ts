/**
 * Image decoding and preprocessing with sharp.
 *
 * Pipeline (the one `../shared/README.md` states for the reference outputs,
 * plus EXIF orientation and alpha flattening):
 *
 *   sharp(input, { limitInputPixels })      decompression-bomb guard (default 0x3FFF²)
 *     .rotate()                             EXIF orientation applied
 *     .flatten({ background })              alpha flattened onto white (default)
 *     .toColourspace('srgb')                ICC profile → sRGB, greyscale → 3 channels
 *     .resize(W, H, { fit: 'cover', position: 'centre' })   'crop' (default)
 *     .resize(W, H, { fit: 'fill' })                        'squash'
 *     .raw()                                uint8 HWC RGB
 *
 * then float32 NHWC: `'tf'` → x / 127.5 - 1 (V1/V2), `'none'` → raw 0..255 (V3).
 *
 * Untrusted images (limits in `lib/limits.ts`):
 * - a path must be a regular file (no FIFO, device, directory) of at most
 *   `maxImageFileBytes`; it is read into memory and decoded from there;
 * - the header is read first (`metadata()`): declared width × height ×
 *   channels × bytes per sample over `maxImageBytes` (default 512 MiB) is
 *   refused before any pixel is decoded (one frame is decoded: the first);
 * - the decode has a time limit (`decodeTimeoutSeconds`, sharp's `timeout`,
 *   checked by libvips between output tiles); SVG filter work is estimated
 *   and capped before rendering (`svgFilterWork`, `MAX_SVG_FILTER_WORK`);
 * - decodes running at the same time share a byte budget
 *   (`MAX_DECODE_BYTES_IN_FLIGHT`, default 1 GiB): a large image waits for
 *   others to finish instead of multiplying the peak by the concurrency;
 * - SVG: decoded from memory, with no base directory, so it cannot
 *   reference other files (librsvg only follows references relative to
 *   the SVG file's own location; without one it follows none — no image
 *   beside it, no FIFO that would block a libuv thread). `allowSvg: false`
 *   refuses SVG input altogether (the HTTP server's default): recognised
 *   from its bytes before libvips sees them (so also when libvips' SVG
 *   loader is blocked or missing), and by the format libvips reports;
 * - the pixel limit (`limitInputPixels`, width × height) is checked on the
 *   header, with the declared size in the message.
 *
 * Every refusal is an ImageDecodeError whose `reason` says which limit or
 * problem it was (lib/errors.ts `ImageProblem`).
 *
 * Alpha: Keras's `load_img` (PIL `convert('RGB')`) drops alpha, which shows
 * whatever colour transparent pixels happen to store (usually black). We
 * flatten onto a background instead, white by default, the way the image
 * looks in a browser or viewer; pass `background: 'drop'` for Keras's
 * behaviour or another colour. Images without alpha are unaffected.
 */
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';
import { ImageDecodeError, type ImageProblem } from './errors.js';
import { FileProblem, readRegularFile } from './formats/files.js';
import { DEFAULT_DECODE_TIMEOUT_SECONDS, DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_FILE_BYTES, MAX_DECODE_BYTES_IN_FLIGHT, MAX_SVG_FILTER_WORK } from './limits.js';
import type { Preprocessing } from './keras/types.js';
import * as v from './validate.js';

/** How an image becomes the model's input size (the one list: API checks and `--resize` flags). */
export const RESIZE_MODES = ['crop', 'squash'] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];

/** Decoded pixels, interleaved (HWC), 8 bits per channel. */
export interface RawPixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA */
  channels: 1 | 2 | 3 | 4;
}

/** A file path, an encoded image (JPEG, PNG, WebP, GIF, TIFF, AVIF, …) or raw pixels. */
export type ImageSource = string | Uint8Array | RawPixels;

export type Background = 'drop' | string | { r: number; g: number; b: number };

export interface DecodeOptions {
  /** Output width and height in pixels. */
  width: number;
  height: number;
  /** 'crop' (default): shorter side to size, centre crop. 'squash': whole image stretched. */
  resize?: ResizeMode;
  /** What transparent pixels become: a colour (default white) or 'drop' (discard alpha like Keras). */
  background?: Background;
  /** sharp's decompression-bomb guard, pixels (width × height). Default 268402689 (0x3FFF²). */
  limitInputPixels?: number;
  /** Most bytes one decoded image may take: declared width × height × channels × bytes per sample (default 512 MiB, `MOBILENET_MAX_IMAGE_BYTES`). */
  maxImageBytes?: number;
  /** Largest encoded image file read from a path (default 256 MiB). */
  maxImageFileBytes?: number;
  /** Decode time limit in seconds (sharp's `timeout`; default 30, `MOBILENET_DECODE_TIMEOUT`). */
  decodeTimeoutSeconds?: number;
  /** Accept SVG input (default true). The HTTP server passes false. */
  allowSvg?: boolean;
}

export interface PreprocessOptions extends DecodeOptions {
  /** 'tf' → x / 127.5 - 1 (default), 'none' → 0..255. */
  preprocessing?: Preprocessing;
}

export const DEFAULT_LIMIT_INPUT_PIXELS = 0x3fff * 0x3fff;

const IMAGE_LIMIT_KEYS = ['limitInputPixels', 'maxImageBytes', 'maxImageFileBytes', 'decodeTimeoutSeconds', 'allowSvg'] as const;

/** The per-call limits of DecodeOptions (lib/limits.ts); `classify`, `classifyBatch`, `embed` and `embedBatch` take them too. */
export type ImageLimitOptions = Pick<DecodeOptions, (typeof IMAGE_LIMIT_KEYS)[number]>;

/**
 * The image limits set in `options` (unset ones left out, so the defaults and
 * environment variables apply), checked as `decodeImage` checks them: for
 * callers that decode many images, so that a bad value is one error up front.
 */
export function imageLimitOptions(options: ImageLimitOptions): ImageLimitOptions {
  const out: Record<string, unknown> = {};
  for (const k of IMAGE_LIMIT_KEYS) if (options[k] !== undefined) out[k] = options[k];
  checkDecodeOptions({ ...out, width: 1, height: 1 });
  return out as ImageLimitOptions;
}
const PREPROCESSINGS = ['tf', 'none'] as const;

/** A short name for an image source, used in error messages and CLI output. */
export function sourceName(src: ImageSource): string {
  if (typeof src === 'string') return src;
  if (src instanceof Uint8Array) return `<buffer of ${src.length} bytes>`;
  return '<raw pixels>';
}

function isRawPixels(src: unknown): src is RawPixels {
  return typeof src === 'object' && src !== null && !(src instanceof Uint8Array) && 'data' in src;
}

function checkRaw(raw: RawPixels): void {
  if (!(raw.data instanceof Uint8Array || raw.data instanceof Uint8ClampedArray)) {
    throw v.typeError('Uint8Array', 'image.data', raw.data);
  }
  v.positiveInteger(raw.width, 'image.width');
  v.positiveInteger(raw.height, 'image.height');
  if (raw.channels !== 1 && raw.channels !== 2 && raw.channels !== 3 && raw.channels !== 4) {
    throw v.rangeError('1, 2, 3 or 4', 'image.channels', raw.channels);
  }
  const expected = raw.width * raw.height * raw.channels;
  if (raw.data.length !== expected) {
    throw v.rangeError(`${expected} bytes (width × height × channels)`, 'image.data', raw.data);
  }
}

function checkDecodeOptions(opts: DecodeOptions): Required<Omit<DecodeOptions, 'background'>> & { background: Background } {
  if (typeof opts !== 'object' || opts === null) throw v.typeError('object', 'options', opts);
  const maxImageBytes = opts.maxImageBytes === undefined ? DEFAULT_MAX_IMAGE_BYTES : v.positiveInteger(opts.maxImageBytes, 'maxImageBytes');
  const maxImageFileBytes = opts.maxImageFileBytes === undefined ? DEFAULT_MAX_IMAGE_FILE_BYTES : v.positiveInteger(opts.maxImageFileBytes, 'maxImageFileBytes');
  const decodeTimeoutSeconds = opts.decodeTimeoutSeconds === undefined ? DEFAULT_DECODE_TIMEOUT_SECONDS : v.positiveInteger(opts.decodeTimeoutSeconds, 'decodeTimeoutSeconds');
  const allowSvg = opts.allowSvg ?? true;
  if (typeof allowSvg !== 'boolean') throw v.typeError('boolean', 'allowSvg', allowSvg);
  const width = v.positiveInteger(opts.width, 'width');
  const height = v.positiveInteger(opts.height, 'height');
  const resize = opts.resize === undefined ? 'crop' : v.oneOf(opts.resize, 'resize', RESIZE_MODES);
  const limitInputPixels =
    opts.limitInputPixels === undefined ? DEFAULT_LIMIT_INPUT_PIXELS : v.positiveInteger(opts.limitInputPixels, 'limitInputPixels');
  const background = opts.background ?? '#ffffff';
  if (typeof background !== 'string' && (typeof background !== 'object' || background === null)) {
    throw v.typeError("colour or 'drop'", 'background', background);
  }
  return { width, height, resize, limitInputPixels, background, maxImageBytes, maxImageFileBytes, decodeTimeoutSeconds, allowSvg };
}

/** Reads an image file: a regular file (not a FIFO, device or directory), not empty, at most `maxBytes`. */
async function readImageFile(file: string, maxBytes: number): Promise<Buffer> {
  let buf: Buffer;
  try {
    buf = await readRegularFile(file, maxBytes);
  } catch (e) {
    if (e instanceof FileProblem) {
      const m = e.code === 'DIR' ? 'is a directory, not an image file' : e.code === 'IO' ? `cannot read file (${e.message.replace(/^cannot read: /, '')})` : e.message;
      throw new ImageDecodeError(m, file, { cause: e, reason: 'file' });
    }
    throw e;
  }
  if (buf.length === 0) throw new ImageDecodeError('empty file (0 bytes)', file, { reason: 'file' });
  return buf;
}

/** Bytes per sample of a libvips band format. */
const SAMPLE_BYTES: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, complex: 8, double: 8, dpcomplex: 16 };

/** Decoded bytes an image will need, from its header: width × height × channels × bytes per sample (first frame only). */
export function declaredImageBytes(meta: Pick<Metadata, 'width' | 'height' | 'channels' | 'depth' | 'pageHeight'>): number {
  const w = meta.width ?? 0;
  const h = meta.pageHeight ?? meta.height ?? 0;
  // Decoded at least as RGB (we convert to sRGB) and at most RGBA.
  const channels = Math.max(3, meta.channels ?? 4);
  return w * h * channels * (SAMPLE_BYTES[meta.depth ?? 'uchar'] ?? 1);
}

// Decodes share a byte budget: a big image waits until it fits (or runs alone).
let inFlight = 0;
let running = 0;
let peakInFlight = 0;
let peakRunning = 0;
const waiting: Array<() => void> = [];

/** The shared decode budget (`MAX_DECODE_BYTES_IN_FLIGHT`): its state now and the most seen since the last reset. */
export interface DecodeBudgetStats {
  /** The budget, bytes (`MOBILENET_MAX_DECODE_BYTES`, default 1 GiB). */
  limit: number;
  /** Declared bytes of the images decoding now. */
  inFlight: number;
  /** Images decoding now. */
  running: number;
  /** Images waiting for room in the budget. */
  waiting: number;
  /** Most bytes in flight at once since the last reset. */
  peakInFlight: number;
  /** Most images decoding at once since the last reset. */
  peakRunning: number;
}

/** The decode budget's counters (for metrics and tests); `reset` starts the peaks again from the current values. */
export function decodeBudgetStats(reset = false): DecodeBudgetStats {
  const out = { limit: MAX_DECODE_BYTES_IN_FLIGHT, inFlight, running, waiting: waiting.length, peakInFlight, peakRunning };
  if (reset) {
    peakInFlight = inFlight;
    peakRunning = running;
  }
  return out;
}

async function acquireDecodeBytes(bytes: number): Promise<() => void> {
  while (running > 0 && inFlight + bytes > MAX_DECODE_BYTES_IN_FLIGHT) {
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  inFlight += bytes;
  running++;
  peakInFlight = Math.max(peakInFlight, inFlight);
  peakRunning = Math.max(peakRunning, running);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    inFlight -= bytes;
    running--;
    for (const w of waiting.splice(0)) w();
  };
}

/** An ImageDecodeError for an error sharp threw, with its reason. */
function sharpError(e: unknown, name: string, timeoutSeconds?: number): ImageDecodeError {
  const full = e instanceof Error ? e.message : String(e);
  // libvips appends its own lines ("VipsImage: killed for image …"): the first says what happened.
  const msg = full.split('\n')[0]?.trim() || full;
  const [message, reason]: [string, ImageProblem] = /pixel limit/i.test(msg)
    ? [`image too large: ${msg}`, 'too-many-pixels']
    : /unsupported image format/i.test(msg)
      ? ['not an image (unsupported image format)', 'undecodable']
      : /timeout/i.test(msg)
        ? [`decoding took too long: more than ${timeoutSeconds ?? '?'} s (libvips: ${msg}) (raise decodeTimeoutSeconds or MOBILENET_DECODE_TIMEOUT)`, 'timeout']
        : [`cannot decode image: ${msg}`, 'undecodable'];
  return new ImageDecodeError(message, name, { cause: e, reason });
}

/**
 * Is this (after an optional BOM and whitespace) an XML document with an
 * `<svg` element in its first 4 KiB? Checked before libvips sees the bytes
 * when SVG is refused, so a blocked or missing SVG loader still gives the
 * SVG refusal rather than "not an image". A few lines of sniffing: sharp
 * offers no format detection that works with the loader blocked.
 */
export function looksLikeSvg(bytes: Uint8Array): boolean {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  if (bytes[i] !== 0x3c) return false; // '<'
  const head = Buffer.from(bytes.buffer, bytes.byteOffset + i, Math.min(bytes.length - i, 4096)).toString('latin1');
  return /<svg[\s>]/i.test(head);
}

const SVG_REFUSED = 'SVG input is refused (allowSvg: false)';

/**
 * The filter work of an SVG, estimated from its text: filter primitive
 * elements (`<feGaussianBlur`, `<feMorphology`, …) × elements that use a
 * filter (at least one) × declared pixels. librsvg runs every primitive
 * over the filtered region for each output tile, and sharp's time limit is
 * only checked between tiles, so a chain of 5,000 blurs ran 48 s past a
 * 1-second limit: such a file is refused from this estimate before
 * rendering. A heuristic (one primitive can be costly too) on top of the
 * time limit, in a few lines because neither sharp nor librsvg exposes a
 * cost estimate; servers refuse SVG altogether (`allowSvg: false`).
 */
export function svgFilterWork(svg: Uint8Array, pixels: number): { primitives: number; filtered: number; work: number } {
  const text = Buffer.from(svg.buffer, svg.byteOffset, svg.byteLength).toString('latin1');
  const primitives = text.match(/<fe[A-Z]/g)?.length ?? 0;
  const filtered = text.match(/filter\s*[=:]\s*["']?\s*url\(/g)?.length ?? 0;
  return { primitives, filtered, work: primitives * Math.max(1, filtered) * pixels };
}

/**
 * Decodes and resizes an image to `width`×`height` RGB uint8 (HWC).
 * Throws ImageDecodeError (naming the file) when it cannot.
 */
export async function decodeImage(src: ImageSource, options: DecodeOptions): Promise<Buffer> {
  const opts = checkDecodeOptions(options);
  const name = sourceName(src);
  let pipeline: Sharp;
  let bytes: number;
  if (typeof src === 'string' || src instanceof Uint8Array) {
    // Paths are read into memory first (regular files only): an SVG decoded from memory has no base directory to reference files from.
    const encoded = typeof src === 'string' ? await readImageFile(src, opts.maxImageFileBytes) : src;
    if (encoded.length === 0) throw new ImageDecodeError('empty buffer (0 bytes)', name);
    if (!opts.allowSvg && looksLikeSvg(encoded)) throw new ImageDecodeError(SVG_REFUSED, name, { reason: 'svg-refused' });
    let meta: Metadata;
    try {
      // The header only: the pixel limit is checked below, with the declared size in the message.
      meta = await sharp(encoded, { limitInputPixels: false }).metadata();
    } catch (e) {
      throw sharpError(e, name);
    }
    if (meta.format === 'svg' && !opts.allowSvg) throw new ImageDecodeError(SVG_REFUSED, name, { reason: 'svg-refused' });
    const pixels = (meta.width ?? 0) * (meta.pageHeight ?? meta.height ?? 0);
    if (meta.format === 'svg') {
      const f = svgFilterWork(encoded, pixels);
      if (f.work > MAX_SVG_FILTER_WORK) {
        throw new ImageDecodeError(
          `SVG filters would take too long to render: ${f.primitives} filter primitives × ${Math.max(1, f.filtered)} filtered elements × ${pixels} pixels is more than the limit of ${MAX_SVG_FILTER_WORK} (refused before rendering)`,
          name,
          { reason: 'timeout' },
        );
      }
    }
    if (pixels > opts.limitInputPixels) {
      throw new ImageDecodeError(
        `image too large: ${meta.width}x${meta.pageHeight ?? meta.height} = ${pixels} pixels, more than the limit of ${opts.limitInputPixels} pixels (raise limitInputPixels)`,
        name,
        { reason: 'too-many-pixels' },
      );
    }
    bytes = declaredImageBytes(meta);
    if (bytes > opts.maxImageBytes) {
      throw new ImageDecodeError(
        `image too large: ${meta.width}x${meta.pageHeight ?? meta.height} with ${meta.channels ?? '?'} channels needs ${bytes} bytes decoded, more than the limit of ${opts.maxImageBytes} bytes (raise maxImageBytes or MOBILENET_MAX_IMAGE_BYTES)`,
        name,
        { reason: 'too-many-bytes' },
      );
    }
    pipeline = sharp(encoded, { limitInputPixels: opts.limitInputPixels, pages: 1 });
  } else if (isRawPixels(src)) {
    checkRaw(src);
    bytes = src.width * src.height * Math.max(3, src.channels);
    if (bytes > opts.maxImageBytes) {
      throw new ImageDecodeError(`image too large: ${bytes} bytes of pixels, more than the limit of ${opts.maxImageBytes} bytes (raise maxImageBytes)`, name, { reason: 'too-many-bytes' });
    }
    pipeline = sharp(src.data, { raw: { width: src.width, height: src.height, channels: src.channels } });
  } else {
    throw v.typeError('file path, Buffer/Uint8Array or { data, width, height, channels }', 'image', src);
  }
  pipeline = pipeline.timeout({ seconds: opts.decodeTimeoutSeconds }).rotate();
  pipeline = opts.background === 'drop' ? pipeline.removeAlpha() : pipeline.flatten({ background: opts.background });
  pipeline = pipeline
    .toColourspace('srgb')
    .resize(opts.width, opts.height, opts.resize === 'crop' ? { fit: 'cover', position: 'centre' } : { fit: 'fill' })
    .raw({ depth: 'uchar' });
  let result: { data: Buffer; info: OutputInfo };
  const release = await acquireDecodeBytes(bytes);
  try {
    result = await pipeline.toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw sharpError(e, name, opts.decodeTimeoutSeconds);
  } finally {
    release();
  }
  const { data, info } = result;
  if (info.width !== opts.width || info.height !== opts.height || info.channels !== 3 || data.length !== opts.width * opts.height * 3) {
    throw new ImageDecodeError(
      `unexpected decoder output ${info.width}x${info.height}x${info.channels} (${data.length} bytes)`,
      name,
    );
  }
  return data;
}

/**
 * x / 127.5 - 1 for every byte value, rounded once to float32 (bit-identical
 * to `../shared/reference/cat.224.f32`; rounding the division first is not).
 */
const TF_TABLE = (() => {
  const t = new Float32Array(256);
  for (let i = 0; i < 256; i++) t[i] = Math.fround(i / 127.5 - 1);
  return t;
})();

/**
 * Converts uint8 RGB pixels to float32 model input, written into `out`
 * starting at `offset` (so a batch buffer can be filled in place).
 */
export function pixelsToTensor(
  rgb: Uint8Array,
  preprocessing: Preprocessing = 'tf',
  out?: Float32Array,
  offset = 0,
): Float32Array {
  if (!(rgb instanceof Uint8Array)) throw v.typeError('Uint8Array', 'pixels', rgb);
  v.oneOf(preprocessing, 'preprocessing', PREPROCESSINGS);
  const n = rgb.length;
  const target = out ?? new Float32Array(n);
  if (!(target instanceof Float32Array)) throw v.typeError('Float32Array', 'out', target);
  v.nonNegativeInteger(offset, 'offset');
  if (offset + n > target.length) throw v.rangeError(`offset + ${n} <= ${target.length}`, 'offset', offset);
  if (preprocessing === 'tf') {
    for (let i = 0; i < n; i++) target[offset + i] = TF_TABLE[rgb[i]!]!;
  } else {
    for (let i = 0; i < n; i++) target[offset + i] = rgb[i]!;
  }
  return target;
}

/**
 * Decodes, resizes and preprocesses one image into float32 NHWC values
 * (`height × width × 3`), written into `out` at `offset` when given.
 */
export async function loadImageTensor(
  src: ImageSource,
  options: PreprocessOptions,
  out?: Float32Array,
  offset = 0,
): Promise<Float32Array> {
  const preprocessing = options?.preprocessing === undefined ? 'tf' : v.oneOf(options.preprocessing, 'preprocessing', PREPROCESSINGS);
  if (out !== undefined) {
    v.float32Array(out, 'out');
    v.nonNegativeInteger(offset, 'offset');
    const n = options.width * options.height * 3;
    if (offset + n > out.length) throw v.rangeError(`offset + ${n} <= ${out.length}`, 'offset', offset);
  }
  const rgb = await decodeImage(src, options);
  return pixelsToTensor(rgb, preprocessing, out, offset);
}
