import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { main } from '../lib/cli/index.js';
import { writeH5 } from '../lib/formats/h5.js';
import { captureIO, type CapturedIO } from './helpers/cli-io.js';
import { hasShared, repoRoot, shared } from './helpers/shared.js';
import {
  allWeightFiles,
  DownloadError,
  downloadFile,
  downloadWeights,
  kerasModelsDir,
  weightFile,
  weightFileByteCap,
  weightUrl,
} from '../lib/download.js';

// A fake weight file served by a local server: a real Keras weights-only .h5 (random
// values, ~300 KB: unverified downloads must be Keras HDF5 files); hashes computed here.
let payload: Buffer;
let payloadSha256: string;
let payloadMd5: string;
/** A body that is not HDF5 (an error page), and a bigger valid one. */
const html = Buffer.from('<!doctype html><html><body>Quota exceeded</body></html>\n');
let bigPayload: Buffer;

let server: http.Server;
let base: string;
const requests: string[] = [];
/** Paths that answer 500 the next N times (to test retry after failure). */
const failures = new Map<string, number>();

beforeAll(async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-download-payload-'));
  const rand = new Float32Array(75_000).map(() => Math.random() - 0.5);
  await writeH5(path.join(work, 'p.h5'), undefined, new Map([['d/kernel', { shape: [75_000], data: rand }]]));
  payload = fs.readFileSync(path.join(work, 'p.h5'));
  payloadSha256 = crypto.createHash('sha256').update(payload).digest('hex');
  payloadMd5 = crypto.createHash('md5').update(payload).digest('hex');
  bigPayload = Buffer.concat([payload, Buffer.alloc(4 << 20)]);
  fs.rmSync(work, { recursive: true, force: true });
  server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push(url);
    if (url.endsWith('/html.h5')) {
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(html.length) });
      res.end(html);
      return;
    }
    if (url.endsWith('/gzip.h5')) {
      const body = zlib.gzipSync(Buffer.alloc(1 << 20));
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(body.length) });
      res.end(body);
      return;
    }
    if (url.endsWith('/huge.h5')) {
      res.writeHead(200, { 'content-length': String(5 * 1024 ** 3) });
      res.write(Buffer.alloc(1024));
      setTimeout(() => res.destroy(), 200);
      return;
    }
    if (url.endsWith('/endless.h5')) {
      // No length, never ends (until the client goes away).
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024);
      const timer = setInterval(() => res.write(chunk), 1);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (url.endsWith('/slow.h5')) {
      // One byte every 100 ms: never idle long enough for the idle timeout.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(Buffer.from([0])), 100);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (url.endsWith('/big.h5')) {
      res.writeHead(200, { 'content-length': String(bigPayload.length) });
      res.end(bigPayload);
      return;
    }
    const fail = failures.get(url) ?? 0;
    if (fail > 0) {
      failures.set(url, fail - 1);
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('boom');
      return;
    }
    if (url.endsWith('/truncated.h5')) {
      // Announces more bytes than it sends, then closes.
      res.writeHead(200, { 'content-length': String(payload.length) });
      res.write(payload.subarray(0, 1000));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    if (url.startsWith('/keras/mobilenet') || url.endsWith('/fake.h5')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(payload.length) });
      res.end(payload);
      return;
    }
    res.writeHead(404);
    res.end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as { port: number };
  base = `http://127.0.0.1:${addr.port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-download-'));
  requests.length = 0;
  failures.clear();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function listDir(d: string): string[] {
  return fs.existsSync(d) ? fs.readdirSync(d).sort() : [];
}

describe('weight file names (Keras applications source)', () => {
  it('builds the V1, V2 and V3 names and URLs Keras uses', () => {
    expect(weightFile({ arch: 'v1', alpha: 0.75 }).fileName).toBe('mobilenet_7_5_224_tf.h5');
    expect(weightFile({ arch: 'v1', alpha: 0.25, includeTop: false }).fileName).toBe('mobilenet_2_5_224_tf_no_top.h5');
    expect(weightFile({ arch: 'v1', alpha: 1, inputSize: 128 }).fileName).toBe('mobilenet_1_0_128_tf.h5');
    expect(weightFile({ arch: 'v2' }).fileName).toBe('mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5');
    expect(weightFile({ arch: 'v2', alpha: 0.35, inputSize: 96, includeTop: false }).fileName).toBe(
      'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5',
    );
    expect(weightFile({ arch: 'v2', alpha: 0.5 }).fileName).toBe('mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224.h5');
    const small = weightFile({ arch: 'v3-small' });
    expect(small.fileName).toBe('weights_mobilenet_v3_small_224_1.0_float.h5');
    expect(small.md5).toBe('8768d4c2e7dee89b9d02b2d03d65d862');
    const large = weightFile({ arch: 'v3-large', alpha: 0.75, includeTop: false });
    expect(large.fileName).toBe('weights_mobilenet_v3_large_224_0.75_float_no_top_v2.h5');
    expect(large.md5).toBe('40af19a13ebea4e2ee0c676887f69a2e');
    expect(weightFile({ arch: 'v3-large', minimalistic: true }).fileName).toBe(
      'weights_mobilenet_v3_large_minimalistic_224_1.0_float.h5',
    );
    expect(weightUrl(weightFile({ arch: 'v1', alpha: 0.5 }))).toBe(
      'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/mobilenet_5_0_224_tf.h5',
    );
    expect(weightUrl(small)).toBe(
      'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float.h5',
    );
  });

  it('lists every official file once: V1 16×2, V2 30×2, V3 6×2', () => {
    const all = allWeightFiles();
    expect(all).toHaveLength(32 + 60 + 12);
    expect(new Set(all.map((f) => f.fileName)).size).toBe(all.length);
    expect(all.filter((f) => f.md5 !== undefined)).toHaveLength(12);
  });

  it('rejects combinations Keras has no weights for', () => {
    expect(() => weightFile({ arch: 'v1', alpha: 0.35 })).toThrow(RangeError);
    expect(() => weightFile({ arch: 'v1', alpha: 0.35 })).toThrow('Expected one of 0.25, 0.5, 0.75, 1 for v1 ImageNet weights for alpha but received 0.35');
    expect(() => weightFile({ arch: 'v2', inputSize: 100 })).toThrow(RangeError);
    expect(() => weightFile({ arch: 'v3-small', inputSize: 192 })).toThrow(RangeError);
    expect(() => weightFile({ arch: 'v3-small', alpha: 0.75, minimalistic: true })).toThrow(RangeError);
    expect(() => weightFile({ arch: 'v1', minimalistic: true })).toThrow(RangeError);
    expect(() => weightFile({ arch: 'v4' as 'v1' })).toThrow(RangeError);
  });

  it('uses $KERAS_HOME/models, else ~/.keras/models', () => {
    expect(kerasModelsDir({ KERAS_HOME: '/x/y' })).toBe(path.join('/x/y', 'models'));
    expect(kerasModelsDir({})).toBe(path.join(os.homedir(), '.keras', 'models'));
  });
});

describe('downloadFile against a local server', () => {
  it('downloads, verifies sha256 and leaves only the final file', async () => {
    const target = path.join(dir, 'sub', 'w.h5');
    const r = await downloadFile(`${base}/fake.h5`, target, { sha256: payloadSha256 });
    expect(r.verified).toBe('sha256');
    expect(r.cached).toBe(false);
    expect(r.bytes).toBe(payload.length);
    expect(r.sha256).toBe(payloadSha256);
    expect(r.md5).toBe(payloadMd5);
    expect(fs.readFileSync(target).equals(payload)).toBe(true);
    expect(listDir(path.join(dir, 'sub'))).toEqual(['w.h5']);
    // A second call keeps the verified file and makes no request.
    requests.length = 0;
    const again = await downloadFile(`${base}/fake.h5`, target, { sha256: payloadSha256 });
    expect(again.cached).toBe(true);
    expect(requests).toEqual([]);
  });

  it('verifies md5 (the Keras V3 hashes)', async () => {
    const r = await downloadFile(`${base}/fake.h5`, path.join(dir, 'm.h5'), { md5: payloadMd5 });
    expect(r.verified).toBe('md5');
  });

  it('hash mismatch: DownloadError and no file left behind', async () => {
    const target = path.join(dir, 'bad.h5');
    const wrong = 'f'.repeat(64);
    await expect(downloadFile(`${base}/fake.h5`, target, { sha256: wrong })).rejects.toThrow(DownloadError);
    await expect(downloadFile(`${base}/fake.h5`, target, { sha256: wrong })).rejects.toThrow(/hash mismatch: sha256 [0-9a-f]{64}, expected f{64}/);
    expect(listDir(dir)).toEqual([]);
  });

  it('HTTP 404: DownloadError naming the status and URL, no file', async () => {
    const target = path.join(dir, 'missing.h5');
    await expect(downloadFile(`${base}/nothing-here.h5`, target)).rejects.toThrow(/HTTP 404.*nothing-here\.h5/);
    expect(listDir(dir)).toEqual([]);
  });

  it('truncated transfer: DownloadError, no file', async () => {
    const target = path.join(dir, 'trunc.h5');
    await expect(downloadFile(`${base}/truncated.h5`, target)).rejects.toThrow(DownloadError);
    expect(listDir(dir)).toEqual([]);
  });

  it('connection refused: DownloadError', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(downloadFile(`http://127.0.0.1:${port}/x.h5`, path.join(dir, 'x.h5'))).rejects.toThrow(DownloadError);
    expect(listDir(dir)).toEqual([]);
  });

  it('a failed download leaves an existing file untouched, and a retry succeeds', async () => {
    const target = path.join(dir, 'w.h5');
    fs.writeFileSync(target, 'old contents');
    failures.set('/fake.h5', 1);
    await expect(downloadFile(`${base}/fake.h5`, target, { sha256: payloadSha256 })).rejects.toThrow(/HTTP 500/);
    expect(fs.readFileSync(target, 'utf8')).toBe('old contents');
    const r = await downloadFile(`${base}/fake.h5`, target, { sha256: payloadSha256 });
    expect(r.cached).toBe(false);
    expect(fs.readFileSync(target).equals(payload)).toBe(true);
    expect(listDir(dir)).toEqual(['w.h5']);
  });

  it('rejects bad arguments with the parameter template', async () => {
    await expect(downloadFile('ftp://x/y', path.join(dir, 'a'))).rejects.toThrow('Expected absolute http(s) URL for url but received "ftp://x/y"');
    await expect(downloadFile(`${base}/fake.h5`, path.join(dir, 'a'), { sha256: 'abc' })).rejects.toThrow(TypeError);
  });
});

describe('downloadWeights into the Keras cache', () => {
  it('writes the Keras file name into $KERAS_HOME/models from a mirror', async () => {
    const r = await downloadWeights({ arch: 'v1', alpha: 0.5, baseUrl: `${base}/keras/`, env: { KERAS_HOME: dir } });
    expect(r.path).toBe(path.join(dir, 'models', 'mobilenet_5_0_224_tf.h5'));
    expect(r.url).toBe(`${base}/keras/mobilenet/mobilenet_5_0_224_tf.h5`);
    expect(r.verified).toBe('none');
    expect(fs.readFileSync(r.path).equals(payload)).toBe(true);
  });

  it.skipIf(!hasShared)('every official V1/V2 file present in ../shared has its sha256 recorded, equal to the hash of that copy', () => {
    const known = new Map(allWeightFiles().map((f) => [f.fileName, f]));
    const found: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (known.has(e.name)) {
          found.push(e.name);
          expect(known.get(e.name)?.sha256, e.name).toBe(crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
        }
      }
    };
    walk(shared('models'));
    expect(found).toEqual(['mobilenet_2_5_224_tf_no_top.h5']);
  });

  it.skipIf(!hasShared)('a V1 file with a recorded sha256 is verified against it: other bytes under its name are refused, the real ones accepted', async () => {
    const real = fs.readFileSync(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'));
    // The shared test server answers every /keras/mobilenet… path with the fake (valid HDF5) payload.
    await expect(downloadWeights({ arch: 'v1', alpha: 0.25, includeTop: false, baseUrl: `${base}/keras/`, env: { KERAS_HOME: dir } })).rejects.toThrow(
      /hash mismatch: sha256 [0-9a-f]{64}, expected dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf/,
    );
    expect(listDir(path.join(dir, 'models'))).toEqual([]);
    const mirror = http.createServer((req, res) => {
      if (req.url === '/m/mobilenet/mobilenet_2_5_224_tf_no_top.h5') {
        res.writeHead(200, { 'content-length': String(real.length) });
        res.end(real);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve));
    try {
      const r = await downloadWeights({ arch: 'v1', alpha: 0.25, includeTop: false, baseUrl: `http://127.0.0.1:${(mirror.address() as { port: number }).port}/m/`, env: { KERAS_HOME: dir } });
      expect(r.verified).toBe('sha256');
      expect(fs.readFileSync(r.path).equals(real)).toBe(true);
    } finally {
      await new Promise<void>((resolve) => mirror.close(() => resolve()));
    }
  });

  it('V3 files are checked against Keras md5: the fake file is rejected', async () => {
    await expect(downloadWeights({ arch: 'v3-small', baseUrl: `${base}/keras/`, env: { KERAS_HOME: dir } })).rejects.toThrow(
      /hash mismatch: md5 [0-9a-f]{32}, expected 8768d4c2e7dee89b9d02b2d03d65d862/,
    );
    expect(listDir(path.join(dir, 'models'))).toEqual([]);
  });
});

const fakeIO = (env: NodeJS.ProcessEnv = {}): CapturedIO => captureIO({ env, cwd: dir });

describe('mobilenet download (CLI, in process)', () => {
  it('downloads into KERAS_HOME and prints the path on stdout', async () => {
    const f = fakeIO({ KERAS_HOME: path.join(dir, 'kh') });
    const code = await main(['download', 'v2', '--alpha', '0.35', '--input-size', '96', '--no-top', '--base-url', `${base}/keras`], f.io);
    expect(code).toBe(0);
    const expected = path.join(dir, 'kh', 'models', 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5');
    expect(f.out()).toBe(`${expected}\n`);
    expect(fs.readFileSync(expected).equals(payload)).toBe(true);
    expect(f.err()).toContain(payloadSha256);
    expect(f.err()).toContain('not verified');
  });

  it('--sha256 mismatch: exit 2, message on stderr, nothing written; then a correct retry works', async () => {
    const f = fakeIO({ KERAS_HOME: dir });
    const args = ['download', 'v1', '--base-url', `${base}/keras/`];
    expect(await main([...args, '--sha256', '0'.repeat(64)], f.io)).toBe(2);
    expect(f.err()).toMatch(/hash mismatch/);
    expect(f.out()).toBe('');
    expect(listDir(path.join(dir, 'models'))).toEqual([]);
    const g = fakeIO({ KERAS_HOME: dir });
    expect(await main([...args, '--sha256', payloadSha256], g.io)).toBe(0);
    expect(g.err()).toContain('sha256 verified');
    expect(listDir(path.join(dir, 'models'))).toEqual(['mobilenet_1_0_224_tf.h5']);
  });

  it('server 404: exit 2', async () => {
    const f = fakeIO({ KERAS_HOME: dir });
    expect(await main(['download', 'v1', '--base-url', `${base}/elsewhere/`], f.io)).toBe(2);
    expect(f.err()).toMatch(/HTTP 404/);
  });

  it('usage errors: exit 1', async () => {
    for (const args of [['download'], ['download', 'v9'], ['download', 'v1', '--alpha', '0.3'], ['download', 'v1', '--bogus']]) {
      const f = fakeIO({ KERAS_HOME: dir });
      expect(await main(args, f.io)).toBe(1);
      expect(f.err()).not.toBe('');
    }
    expect(listDir(dir)).toEqual([]);
  });

  it('--list prints every file with its URL and no request is made', async () => {
    const f = fakeIO({ KERAS_HOME: dir });
    expect(await main(['download', '--list'], f.io)).toBe(0);
    const lines = f.out().trim().split('\n');
    expect(lines).toHaveLength(104);
    expect(lines).toContain(
      'weights_mobilenet_v3_small_224_1.0_float.h5\thttps://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float.h5\tmd5:8768d4c2e7dee89b9d02b2d03d65d862',
    );
    expect(requests).toEqual([]);
  });
});

describe('untrusted servers (issue 14)', () => {
  it('an HTML error page with HTTP 200 is not saved as the .h5 (no known hash: HDF5 structure checked before the rename)', async () => {
    const target = path.join(dir, 'w.h5');
    const err = await downloadFile(`${base}/html.h5`, target).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(/the downloaded file is not a Keras HDF5 weights file \(not an HDF5 file \(no HDF5 signature; 56 bytes\)\); it was not saved/);
    expect(listDir(dir)).toEqual([]);
    // A bad file left by an older version is not "already present": it is downloaded again.
    fs.writeFileSync(target, html);
    const r = await downloadFile(`${base}/fake.h5`, target);
    expect(r.cached).toBe(false);
    expect(fs.readFileSync(target).equals(payload)).toBe(true);
  });

  it('a gzip Content-Encoding (a gzip bomb fetch would inflate) is refused', async () => {
    await expect(downloadFile(`${base}/gzip.h5`, path.join(dir, 'g.h5'))).rejects.toThrow(/the server sent a compressed body \(Content-Encoding: gzip\) for a binary file/);
    expect(listDir(dir)).toEqual([]);
  });

  it('size cap: an announced length over the cap is refused at once; an endless body stops at the cap', async () => {
    await expect(downloadFile(`${base}/huge.h5`, path.join(dir, 'h.h5'), { maxBytes: 10_000_000 })).rejects.toThrow(/announces 5368709120 bytes, more than the limit of 10000000 bytes/);
    await expect(downloadFile(`${base}/endless.h5`, path.join(dir, 'e.h5'), { maxBytes: 2_000_000 })).rejects.toThrow(/download interrupted after \d+ bytes: more than the limit of 2000000 bytes/);
    expect(listDir(dir)).toEqual([]);
  });

  it('the official files have a size cap from their parameter count (the known file fits it)', async () => {
    const known = weightFile({ arch: 'v1', alpha: 0.25, includeTop: false });
    const cap = await weightFileByteCap(known);
    expect(cap).toBeGreaterThan(2_108_140); // mobilenet_2_5_224_tf_no_top.h5 in ../shared
    expect(cap).toBeLessThan(20_000_000);
    expect(await weightFileByteCap(weightFile({ arch: 'v2', alpha: 1.4 }))).toBeGreaterThan(6_156_712 * 4);
  });

  it('an overall deadline stops a server that sends one byte every 100 ms', async () => {
    await expect(downloadFile(`${base}/slow.h5`, path.join(dir, 's.h5'), { deadlineMs: 1000, idleTimeoutMs: 5000 })).rejects.toThrow(/not finished within the deadline of 1000 ms/);
    expect(listDir(dir)).toEqual([]);
  });

  it('a long download adds no listener per drain (no MaxListenersExceededWarning)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.name);
    };
    process.on('warning', onWarning);
    try {
      const sha = crypto.createHash('sha256').update(bigPayload).digest('hex');
      const r = await downloadFile(`${base}/big.h5`, path.join(dir, 'b.h5'), { sha256: sha });
      expect(r.bytes).toBe(bigPayload.length);
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('credentials in a URL are refused and never printed', async () => {
    const secretUrl = `http://alice:s3cret@127.0.0.1:1/x.h5`;
    const err = await downloadFile(secretUrl, path.join(dir, 'x.h5')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).not.toContain('s3cret');
    expect((err as Error).message).not.toContain('alice');
    const f = fakeIO({ KERAS_HOME: dir });
    expect(await main(['download', 'v1', '--base-url', 'https://alice:s3cret@example.invalid/keras/'], f.io)).toBe(1);
    expect(f.err()).toContain('URL without user name or password');
    expect(f.err() + f.out()).not.toContain('s3cret');
    expect(f.err() + f.out()).not.toContain('alice');
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('%s during a download removes the .part file', async (signal) => {
    const target = path.join(dir, 'sig.h5');
    const script = path.join(dir, 'sig.mts');
    const lib = path.join(repoRoot, 'lib', 'download.ts');
    fs.writeFileSync(
      script,
      `import { downloadFile } from ${JSON.stringify(lib)};\nlet said = false;\nawait downloadFile(${JSON.stringify(`${base}/slow.h5`)}, ${JSON.stringify(target)}, { onProgress: () => { if (!said) { said = true; console.log('started'); } } });\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('started')) resolve();
      });
      child.on('exit', () => reject(new Error('child exited early')));
    });
    expect(listDir(dir).filter((n) => n.endsWith('.part'))).toHaveLength(1);
    const exit = new Promise<[number | null, string | null]>((resolve) => child.on('exit', (code, sig) => resolve([code, sig])));
    child.kill(signal);
    const [code, sig] = await exit;
    expect(sig ?? code).toBe(signal); // ends by the same signal, as without the handler
    expect(listDir(dir).filter((n) => n.endsWith('.part'))).toEqual([]);
  });

  it('SIGTERM while a temporary file is in use (the .keras loader\'s model.weights.h5) removes it', async () => {
    const script = path.join(dir, 'tmp.mts');
    const lib = path.join(repoRoot, 'lib', 'formats', 'files.ts');
    fs.writeFileSync(
      script,
      `import fs from 'node:fs';\nimport { withTempPath } from ${JSON.stringify(lib)};\nawait withTempPath('.weights.h5', async (p) => { fs.writeFileSync(p, 'x'); console.log(p); await new Promise(() => setInterval(() => {}, 1000)); });\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const tmpFile = await new Promise<string>((resolve) => child.stdout.on('data', (d: Buffer) => resolve(d.toString().trim())));
    expect(fs.existsSync(tmpFile)).toBe(true);
    const exit = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    child.kill('SIGTERM');
    await exit;
    expect(fs.existsSync(path.dirname(tmpFile))).toBe(false);
  });
});
