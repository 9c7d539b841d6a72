/**
 * Official Keras Applications MobileNet weight files: names, URLs, known
 * hashes, and an atomic, retry-safe download into the Keras cache directory
 * (`$KERAS_HOME/models`, default `~/.keras/models`). Nothing here runs unless
 * the user asks (`mobilenet download`).
 *
 * File names and URLs are those Keras builds in
 * keras/src/applications/mobilenet.py, mobilenet_v2.py and mobilenet_v3.py:
 *   V1: mobilenet/mobilenet_{1_0|7_5|5_0|2_5}_{128|160|192|224}_tf[_no_top].h5
 *   V2: mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{96..224}[_no_top].h5
 *   V3: mobilenet_v3/weights_mobilenet_v3_{large|small}[_minimalistic]_224_{alpha}_float[_no_top_v2].h5
 * Keras lists md5 hashes for the V3 files only (WEIGHTS_HASHES, all 12
 * recorded); for V1/V2 it lists none. Of the 92 V1/V2 files (32 V1, 60
 * V2), a sha256 is recorded (KNOWN_SHA256) for every one of which a copy
 * was available to hash: only mobilenet_2_5_224_tf_no_top.h5
 * (../shared/models/keras-h5; test/download.test.ts checks the table
 * against every known file present there). The other 91 (31 V1, 60 V2)
 * have no recorded hash: they were never downloaded where this table was
 * made (no network), and no hash is invented; their sha256 is printed
 * after download, a caller who knows it can pass `sha256`, and such a file
 * must be a Keras HDF5 weights file before it is renamed into place.
 *
 * Untrusted servers (and mirrors given with `--base-url`): a download is
 * capped in size (`maxBytes`; for the official files a cap computed from
 * the parameter count of the architecture, see `weightFileByteCap`), has an
 * overall deadline besides the idle timeout (`deadlineMs`, default 30
 * minutes), asks for and accepts only an identity transfer (a
 * `Content-Encoding: gzip` body, which fetch would inflate on the fly, is
 * refused), and an unverified `.h5` (no known hash) must carry the HDF5
 * signature and Keras's `layer_names` before it is renamed into place.
 * `.part` files are removed on SIGINT/SIGTERM too. A URL's user name and
 * password are never printed (`redactUrl`); URLs with credentials are
 * refused.
 */
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { removeOnSignal } from './cleanup.js';
import { kerasHome, type Env } from './env.js';
import { DownloadError } from './errors.js';
import { DEFAULT_DOWNLOAD_DEADLINE_MS } from './limits.js';
import * as v from './validate.js';

export { DownloadError };

export const KERAS_BASE_URL = 'https://storage.googleapis.com/tensorflow/keras-applications/';

/** The URL with any user name and password replaced by `***` (for messages). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '***';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//***@');
  }
}

export type DownloadArch = 'v1' | 'v2' | 'v3-small' | 'v3-large';

export interface WeightFileOptions {
  arch: DownloadArch;
  /** Width multiplier (default 1.0). */
  alpha?: number;
  /** Input size (default 224). V3 has 224 only. */
  inputSize?: number;
  /** With the classifier (default true). */
  includeTop?: boolean;
  /** V3 minimalistic variant (alpha 1.0 only). */
  minimalistic?: boolean;
}

export interface WeightFile {
  arch: DownloadArch;
  alpha: number;
  inputSize: number;
  includeTop: boolean;
  minimalistic: boolean;
  /** File name in the Keras cache (the name Keras uses). */
  fileName: string;
  /** Path below the base URL, e.g. `mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float.h5`. */
  urlPath: string;
  /** Hashes Keras publishes (md5, V3) or that are otherwise known (sha256). */
  md5?: string;
  sha256?: string;
}

export const V1_ALPHAS = [0.25, 0.5, 0.75, 1.0] as const;
export const V1_SIZES = [128, 160, 192, 224] as const;
export const V2_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] as const;
export const V2_SIZES = [96, 128, 160, 192, 224] as const;
export const V3_ALPHAS = [0.75, 1.0] as const;

/** keras/src/applications/mobilenet_v3.py WEIGHTS_HASHES: md5 of [with top, no top]. */
const V3_MD5: Record<string, [string, string]> = {
  'large_224_0.75_float': ['765b44a33ad4005b3ac83185abf1d0eb', '40af19a13ebea4e2ee0c676887f69a2e'],
  'large_224_1.0_float': ['59e551e166be033d707958cf9e29a6a7', '07fb09a5933dd0c8eaafa16978110389'],
  'large_minimalistic_224_1.0_float': ['675e7b876c45c57e9e63e6d90a36599c', 'ec5221f64a2f6d1ef965a614bdae7973'],
  'small_224_0.75_float': ['cb65d4e5be93758266aa0a7f2c6708b7', 'ebdb5cc8e0b497cd13a7c275d475c819'],
  'small_224_1.0_float': ['8768d4c2e7dee89b9d02b2d03d65d862', 'd3e8ec802a04aa4fc771ee12a9a9b836'],
  'small_minimalistic_224_1.0_float': ['99cd97fb2fcdad2bf028eb838de69e37', 'cde8136e733e811080d9fcd8a252f7e4'],
};

/** sha256 of V1/V2 files computed on known copies (see the module comment). */
const KNOWN_SHA256: Record<string, string> = {
  'mobilenet_2_5_224_tf_no_top.h5': 'dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf',
};

/** Python's str(float(x)) for the alphas Keras accepts: 1 → "1.0", 0.5 → "0.5", 0.35 → "0.35". */
function pyFloat(x: number): string {
  return Number.isInteger(x) ? x.toFixed(1) : String(x);
}

function oneOfNumbers(value: number, name: string, options: readonly number[], what = ''): number {
  if (!options.includes(value)) {
    throw v.rangeError(`one of ${options.join(', ')}${what}`, name, value);
  }
  return value;
}

/** The official weight file for a MobileNet variant (Keras's own rules for which exist). */
export function weightFile(options: WeightFileOptions): WeightFile {
  if (typeof options !== 'object' || options === null) throw v.typeError('object', 'options', options);
  const arch = v.oneOf(options.arch, 'arch', ['v1', 'v2', 'v3-small', 'v3-large'] as const);
  const alpha = options.alpha === undefined ? 1.0 : v.finiteNumber(options.alpha, 'alpha');
  const inputSize = options.inputSize === undefined ? 224 : v.positiveInteger(options.inputSize, 'inputSize');
  const includeTop = options.includeTop ?? true;
  if (typeof includeTop !== 'boolean') throw v.typeError('boolean', 'includeTop', includeTop);
  const minimalistic = options.minimalistic ?? false;
  if (typeof minimalistic !== 'boolean') throw v.typeError('boolean', 'minimalistic', minimalistic);
  if (minimalistic && !arch.startsWith('v3')) throw v.rangeError('v3-small or v3-large with minimalistic', 'arch', arch);

  let fileName: string;
  let urlPath: string;
  let md5: string | undefined;
  if (arch === 'v1') {
    oneOfNumbers(alpha, 'alpha', V1_ALPHAS, ' for v1 ImageNet weights');
    oneOfNumbers(inputSize, 'inputSize', V1_SIZES, ' for v1 ImageNet weights');
    const alphaText = ({ 1: '1_0', 0.75: '7_5', 0.5: '5_0', 0.25: '2_5' } as Record<number, string>)[alpha]!;
    fileName = `mobilenet_${alphaText}_${inputSize}_tf${includeTop ? '' : '_no_top'}.h5`;
    urlPath = `mobilenet/${fileName}`;
  } else if (arch === 'v2') {
    oneOfNumbers(alpha, 'alpha', V2_ALPHAS, ' for v2 ImageNet weights');
    oneOfNumbers(inputSize, 'inputSize', V2_SIZES, ' for v2 ImageNet weights');
    fileName = `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${pyFloat(alpha)}_${inputSize}${includeTop ? '' : '_no_top'}.h5`;
    urlPath = `mobilenet_v2/${fileName}`;
  } else {
    oneOfNumbers(alpha, 'alpha', minimalistic ? [1.0] : V3_ALPHAS, ` for ${arch}${minimalistic ? ' minimalistic' : ''} ImageNet weights`);
    oneOfNumbers(inputSize, 'inputSize', [224], ` for ${arch} ImageNet weights`);
    const modelName = `${arch === 'v3-large' ? 'large' : 'small'}${minimalistic ? '_minimalistic' : ''}_224_${pyFloat(alpha)}_float`;
    fileName = `weights_mobilenet_v3_${modelName}${includeTop ? '' : '_no_top_v2'}.h5`;
    urlPath = `mobilenet_v3/${fileName}`;
    md5 = V3_MD5[modelName]![includeTop ? 0 : 1];
  }
  const file: WeightFile = { arch, alpha, inputSize, includeTop, minimalistic, fileName, urlPath };
  if (md5 !== undefined) file.md5 = md5;
  const sha256 = KNOWN_SHA256[fileName];
  if (sha256 !== undefined) file.sha256 = sha256;
  return file;
}

/** Every official MobileNet weight file (for `mobilenet download --list`). */
export function allWeightFiles(): WeightFile[] {
  const out: WeightFile[] = [];
  for (const includeTop of [true, false]) {
    for (const alpha of V1_ALPHAS) for (const s of V1_SIZES) out.push(weightFile({ arch: 'v1', alpha, inputSize: s, includeTop }));
    for (const alpha of V2_ALPHAS) for (const s of V2_SIZES) out.push(weightFile({ arch: 'v2', alpha, inputSize: s, includeTop }));
    for (const arch of ['v3-small', 'v3-large'] as const) {
      for (const alpha of V3_ALPHAS) out.push(weightFile({ arch, alpha, includeTop }));
      out.push(weightFile({ arch, alpha: 1.0, includeTop, minimalistic: true }));
    }
  }
  return out;
}

/** The Keras cache directory for models: `$KERAS_HOME/models`, else `~/.keras/models`. */
export function kerasModelsDir(env?: Env): string {
  const home = kerasHome(env) ?? path.join(os.homedir(), '.keras');
  return path.join(home, 'models');
}

export function weightUrl(file: WeightFile, baseUrl: string = KERAS_BASE_URL): string {
  return new URL(file.urlPath, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).toString();
}

export interface DownloadOptions {
  /** Expected sha256 (hex); the file is rejected when it differs. */
  sha256?: string;
  /** Expected md5 (hex), as Keras lists for V3. */
  md5?: string;
  /** Replace an existing file. Default: an existing file that passes the given hashes is kept. */
  force?: boolean;
  /** Abort when no data arrives for this long (ms, default 60000). */
  idleTimeoutMs?: number;
  /** Abort when the whole download takes longer (ms, default 30 minutes). */
  deadlineMs?: number;
  /** Refuse bodies larger than this (bytes; default: no cap for `downloadFile`, the architecture's cap for `downloadWeights`). */
  maxBytes?: number;
  /** Check the file is a Keras HDF5 weights file before it is saved (default: when no hash is known). */
  checkHdf5?: boolean;
  /** Called as bytes arrive (total is null when the server sends no length). */
  onProgress?: (received: number, total: number | null) => void;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  md5: string;
  /** Which expected hash the file was checked against. */
  verified: 'sha256' | 'md5' | 'none';
  /** True when an existing file was kept and nothing was downloaded. */
  cached: boolean;
}

function checkHex(value: string | undefined, name: string, length: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !new RegExp(`^[0-9a-fA-F]{${length}}$`).test(value)) {
    throw v.typeError(`${length} hex digits`, name, value);
  }
  return value.toLowerCase();
}

async function hashFile(file: string): Promise<{ sha256: string; md5: string; bytes: number }> {
  const sha = crypto.createHash('sha256');
  const md5 = crypto.createHash('md5');
  let bytes = 0;
  for await (const chunk of fs.createReadStream(file)) {
    sha.update(chunk as Buffer);
    md5.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: sha.digest('hex'), md5: md5.digest('hex'), bytes };
}

function verify(
  got: { sha256: string; md5: string },
  want: { sha256?: string; md5?: string },
): { ok: boolean; verified: DownloadResult['verified']; detail: string } {
  if (want.sha256 !== undefined) {
    return { ok: got.sha256 === want.sha256, verified: 'sha256', detail: `sha256 ${got.sha256}, expected ${want.sha256}` };
  }
  if (want.md5 !== undefined) {
    return { ok: got.md5 === want.md5, verified: 'md5', detail: `md5 ${got.md5}, expected ${want.md5}` };
  }
  return { ok: true, verified: 'none', detail: '' };
}

/**
 * Downloads `url` to `target` atomically: the bytes go to a temporary file
 * in the same directory, are hashed as they arrive, and the file is renamed
 * onto `target` only when complete and matching the expected hash. On any
 * failure the temporary file is removed and `target` is left as it was, so
 * the call can simply be repeated.
 */
export async function downloadFile(url: string, target: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  if (typeof url !== 'string') throw v.typeError('string', 'url', url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw v.rangeError('absolute http(s) URL', 'url', url);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw v.rangeError('absolute http(s) URL', 'url', redactUrl(url));
  if (parsed.username !== '' || parsed.password !== '') throw v.rangeError('URL without user name or password', 'url', redactUrl(url));
  const shown = redactUrl(url);
  if (typeof target !== 'string' || target === '') throw v.typeError('file path', 'target', target);
  const want = { sha256: checkHex(options.sha256, 'sha256', 64), md5: checkHex(options.md5, 'md5', 32) };
  const idle = options.idleTimeoutMs === undefined ? 60_000 : v.positiveInteger(options.idleTimeoutMs, 'idleTimeoutMs');
  const deadline = options.deadlineMs === undefined ? DEFAULT_DOWNLOAD_DEADLINE_MS : v.positiveInteger(options.deadlineMs, 'deadlineMs');
  const maxBytes = options.maxBytes === undefined ? Infinity : v.positiveInteger(options.maxBytes, 'maxBytes');

  if (!options.force && fs.existsSync(target)) {
    const got = await hashFile(target);
    const check = verify(got, want);
    const structureOk =
      !(options.checkHdf5 ?? (check.verified === 'none' && target.endsWith('.h5'))) ||
      (await checkKerasH5(target, shown).then(
        () => true,
        () => false,
      ));
    if (check.ok && structureOk) return { path: target, ...got, verified: check.verified, cached: true };
    // A stale or corrupt file: download again (it is replaced only if the new one verifies).
  }

  const dir = path.dirname(target);
  try {
    await fs.promises.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new DownloadError(`cannot create directory ${dir}: ${(e as Error).message}`, shown, { cause: e });
  }
  const temp = path.join(dir, `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.part`);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`no data for ${idle} ms`)), idle);
  };
  const deadlineTimer = setTimeout(() => controller.abort(new Error(`not finished within the deadline of ${deadline} ms`)), deadline);
  let out: fs.WriteStream | undefined;
  const untrack = removeOnSignal(temp);
  try {
    arm();
    let response: Response;
    try {
      response = await fetch(url, { signal: controller.signal, redirect: 'follow', headers: { 'accept-encoding': 'identity' } });
    } catch (e) {
      const cause = (e as { cause?: Error }).cause;
      const reason = controller.signal.aborted ? (controller.signal.reason as Error).message : (cause?.message ?? (e as Error).message);
      throw new DownloadError(`download failed: ${reason}`, shown, { cause: e });
    }
    if (!response.ok || response.body === null) {
      await response.body?.cancel().catch(() => undefined);
      throw new DownloadError(`download failed: HTTP ${response.status} ${response.statusText}`.trimEnd(), shown);
    }
    const encoding = (response.headers.get('content-encoding') ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity' && encoding !== '') {
      await response.body.cancel().catch(() => undefined);
      throw new DownloadError(`download refused: the server sent a compressed body (Content-Encoding: ${encoding}) for a binary file`, shown);
    }
    const lengthHeader = response.headers.get('content-length');
    const total = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
    if (total !== null && total > maxBytes) {
      await response.body.cancel().catch(() => undefined);
      throw new DownloadError(`download refused: the server announces ${total} bytes, more than the limit of ${maxBytes} bytes`, shown);
    }
    const sha = crypto.createHash('sha256');
    const md5 = crypto.createHash('md5');
    let bytes = 0;
    out = fs.createWriteStream(temp, { flags: 'wx' });
    const opened = new Promise<void>((resolve, reject) => {
      out!.once('open', () => resolve());
      out!.once('error', reject);
    });
    try {
      await opened;
    } catch (e) {
      throw new DownloadError(`cannot write ${temp}: ${(e as Error).message}`, shown, { cause: e });
    }
    try {
      for await (const chunk of Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>)) {
        arm();
        const buf = chunk as Buffer;
        sha.update(buf);
        md5.update(buf);
        bytes += buf.length;
        if (bytes > maxBytes) throw new Error(`more than the limit of ${maxBytes} bytes`);
        // events.once removes both its 'drain' and its 'error' listener whichever fires.
        if (!out.write(buf)) await once(out, 'drain');
        options.onProgress?.(bytes, total);
      }
    } catch (e) {
      const reason = controller.signal.aborted ? (controller.signal.reason as Error).message : (e as Error).message;
      throw new DownloadError(`download interrupted after ${bytes} bytes: ${reason}`, shown, { cause: e });
    }
    await new Promise<void>((resolve, reject) => {
      out!.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
    if (total !== null && bytes !== total) {
      throw new DownloadError(`download incomplete: received ${bytes} of ${total} bytes`, shown);
    }
    const got = { sha256: sha.digest('hex'), md5: md5.digest('hex') };
    const check = verify(got, want);
    if (!check.ok) throw new DownloadError(`hash mismatch: ${check.detail}; the file was not saved`, shown);
    if (options.checkHdf5 ?? (check.verified === 'none' && target.endsWith('.h5'))) await checkKerasH5(temp, shown);
    await fs.promises.rename(temp, target);
    return { path: target, bytes, ...got, verified: check.verified, cached: false };
  } catch (e) {
    out?.destroy();
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    if (e instanceof DownloadError) throw e;
    throw new DownloadError(`download failed: ${(e as Error).message}`, shown, { cause: e });
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    clearTimeout(deadlineTimer);
    untrack();
  }
}

/** An unverified download must be a Keras HDF5 weights file: signature, readable structure, `layer_names`. */
async function checkKerasH5(file: string, shown: string): Promise<void> {
  const { readH5Raw } = await import('./formats/h5.js');
  try {
    await readH5Raw(file, true, { timeoutMs: 60_000 });
  } catch (e) {
    const m = (e as Error).message.replace(`${file}: `, '');
    throw new DownloadError(`the downloaded file is not a Keras HDF5 weights file (${m}); it was not saved`, shown, { cause: e });
  }
}

/**
 * Largest plausible size of an official weight file: 4 bytes per parameter
 * of the architecture, plus 64 KiB of HDF5 structure per weight array, plus
 * 4 MiB. (The one file whose size is known here, mobilenet_2_5_224_tf_no_top.h5,
 * is 2,108,140 bytes: 218,544 parameters in 135 arrays, cap 13.5 MB.)
 */
export async function weightFileByteCap(file: WeightFile): Promise<number> {
  const { buildArchitecture } = await import('./architectures/index.js');
  const { analyzeModel } = await import('./keras/layers.js');
  const config = buildArchitecture(file.arch, {
    alpha: file.alpha,
    includeTop: file.includeTop,
    inputShape: [file.inputSize, file.inputSize, 3],
    ...(file.arch.startsWith('v3') ? { minimalistic: file.minimalistic } : {}),
  });
  const a = analyzeModel(config);
  const arrays = a.layers.reduce((s, l) => s + l.weights.length, 0);
  return a.totalParams * 4 + arrays * 65536 + 4 * 1024 * 1024;
}

export interface DownloadWeightsOptions extends WeightFileOptions, Omit<DownloadOptions, 'md5'> {
  /** Mirror of https://storage.googleapis.com/tensorflow/keras-applications/ */
  baseUrl?: string;
  /** Target directory (default: the Keras cache, `$KERAS_HOME/models` or `~/.keras/models`). */
  dir?: string;
  env?: Env;
}

/** Downloads an official weight file into the Keras cache; see `downloadFile`. */
export async function downloadWeights(options: DownloadWeightsOptions): Promise<DownloadResult & { file: WeightFile; url: string }> {
  const file = weightFile(options);
  const url = weightUrl(file, options.baseUrl ?? KERAS_BASE_URL);
  const dir = options.dir ?? kerasModelsDir(options.env);
  const sha256 = options.sha256 ?? file.sha256;
  const result = await downloadFile(url, path.join(dir, file.fileName), {
    sha256,
    md5: sha256 === undefined ? file.md5 : undefined,
    force: options.force,
    idleTimeoutMs: options.idleTimeoutMs,
    deadlineMs: options.deadlineMs,
    maxBytes: options.maxBytes ?? (await weightFileByteCap(file)),
    checkHdf5: options.checkHdf5,
    onProgress: options.onProgress,
  });
  return { ...result, file, url };
}
