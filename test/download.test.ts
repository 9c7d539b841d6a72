import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../lib/cli/index.js';
import {
  allWeightFiles,
  DownloadError,
  downloadFile,
  downloadWeights,
  kerasModelsDir,
  weightFile,
  weightUrl,
} from '../lib/download.js';

// A fake weight file served by a local server; its hashes are computed here.
const payload = crypto.randomBytes(300_000);
const payloadSha256 = crypto.createHash('sha256').update(payload).digest('hex');
const payloadMd5 = crypto.createHash('md5').update(payload).digest('hex');

let server: http.Server;
let base: string;
const requests: string[] = [];
/** Paths that answer 500 the next N times (to test retry after failure). */
const failures = new Map<string, number>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push(url);
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

  it('V3 files are checked against Keras md5: the fake file is rejected', async () => {
    await expect(downloadWeights({ arch: 'v3-small', baseUrl: `${base}/keras/`, env: { KERAS_HOME: dir } })).rejects.toThrow(
      /hash mismatch: md5 [0-9a-f]{32}, expected 8768d4c2e7dee89b9d02b2d03d65d862/,
    );
    expect(listDir(path.join(dir, 'models'))).toEqual([]);
  });
});

function fakeIO(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => out.push(d.toString()));
  stderr.on('data', (d: Buffer) => err.push(d.toString()));
  return { io: { stdout, stderr, env, cwd: dir }, out: () => out.join(''), err: () => err.join('') };
}

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
