/**
 * `mobilenet serve`: a real server process on 127.0.0.1, real HTTP clients.
 * Answers are checked against classify() run in this process on the same
 * weights; bad input against the documented status codes.
 */
import fs from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, type Prediction } from '../lib/classify.js';
import { loadModel, type Model } from '../lib/model.js';
import { pngHeaderBomb } from './helpers/png.js';
import { expectSame, metric, multipartBody, postImage, request, startServer, type Server } from './helpers/server.js';
import { hasShared, referenceOutput, shared } from './helpers/shared.js';

describe.skipIf(!hasShared)('mobilenet serve', () => {
  let server: Server;
  let model: Model;
  const images: Array<{ name: string; bytes: Buffer; all: Prediction[] }> = [];

  beforeAll(async () => {
    const weights = shared('models', 'mobilenet_v1_0.75_224', 'model.json');
    server = await startServer(['--weights', weights, '--max-batch', '8', '--max-wait-ms', '5', '--max-body', '1mb', '--max-files', '4', '--max-pixels', '4000000']);
    model = await loadModel(weights, { threads: 1 });
    const sample = shared('images', 'imagenet-sample');
    const files = [shared('images', 'cat.jpg'), ...fs.readdirSync(sample).filter((f) => f.endsWith('.JPEG')).sort().slice(0, 11).map((f) => `${sample}/${f}`)];
    for (const f of files) {
      images.push({ name: f.split('/').pop()!, bytes: fs.readFileSync(f), all: await classify(model, f, { topK: 1000 }) });
    }
  });

  afterAll(async () => {
    const code = await server?.stop();
    model?.dispose();
    expect(code).toBe(0);
  });

  it('classifies a raw image body like classify(), with ?top=K', async () => {
    for (const img of images.slice(0, 4)) {
      const r = await postImage(server.url, img.bytes);
      expect(r.status, r.text).toBe(200);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.json.model).toBe('mobilenet_0.75_224');
      expectSame(r.json.predictions, img.all);
    }
    // The cat: top-2 as in the shared TF.js reference.
    const cat = await postImage(server.url, images[0]!.bytes, 'image/jpeg', '?top=2');
    expect(cat.json.predictions.map((p: Prediction) => p.index)).toEqual(referenceOutput('0.75', 'cat.jpg').top5.slice(0, 2));
    expectSame(cat.json.predictions, images[0]!.all, 2);
    // The declared type need not match the bytes: a JPEG sent as image/png is decoded by its content.
    expectSame((await postImage(server.url, images[1]!.bytes, 'image/png')).json.predictions, images[1]!.all);
  });

  it('classifies several multipart image parts in order', async () => {
    const parts = images.slice(1, 4).map((img) => ({ field: 'image', name: img.name, type: 'image/jpeg', bytes: img.bytes }));
    const { body, type } = await multipartBody(parts);
    const r = await request(`${server.url}/v1/classify?top=3`, { method: 'POST', headers: { 'content-type': type }, body });
    expect(r.status, r.text).toBe(200);
    expect(r.json.images.map((x: { name: string }) => x.name)).toEqual(parts.map((p) => p.name));
    r.json.images.forEach((x: { predictions: Prediction[] }, i: number) => expectSame(x.predictions, images[i + 1]!.all, 3));
  });

  it('GET /v1/models, /healthz, /readyz, /', async () => {
    const m = await request(`${server.url}/v1/models`);
    expect(m.status).toBe(200);
    expect(m.json.models).toEqual([
      expect.objectContaining({
        name: 'mobilenet_0.75_224',
        architecture: 'v1',
        inputShape: [224, 224, 3],
        classes: 1000,
        parameters: 2601976, // ../shared/README.md: 2,601,976 float32 values
        preprocessing: 'tf',
        maxBatch: 8,
      }),
    ]);
    expect((await request(`${server.url}/healthz`)).json).toEqual({ status: 'ok' });
    const ready = await request(`${server.url}/readyz`);
    expect([ready.status, ready.json]).toEqual([200, { status: 'ready' }]);
    const page = await request(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('v1/classify');
  });

  it('answers every kind of bad input with its status code and a JSON error naming the problem', async () => {
    const cat = images[0]!.bytes;
    const svg = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><image href="/etc/passwd"/></svg>';
    const big = await sharp({ create: { width: 2500, height: 2000, channels: 3, background: '#808080' } }).png().toBuffer();
    expect(big.length).toBeLessThan(1024 * 1024); // under --max-body: refused for its pixels
    const form = async (parts: Array<{ field: string; name: string; type: string; bytes: Buffer }>): Promise<{ body: Buffer; headers: Record<string, string> }> => {
      const { body, type } = await multipartBody(parts);
      return { body, headers: { 'content-type': type } };
    };
    const post = (o: { body: Buffer | string; headers: Record<string, string> }, query = ''): ReturnType<typeof request> =>
      request(`${server.url}/v1/classify${query}`, { method: 'POST', ...o });
    const cases: Array<[string, Promise<Awaited<ReturnType<typeof request>>>, number, string, RegExp]> = [
      ['JSON body', post({ body: '{"image": 1}', headers: { 'content-type': 'application/json' } }), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', /Content type 'application\/json' is not accepted/],
      ['text/plain', post({ body: cat, headers: { 'content-type': 'text/plain' } }), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', /text\/plain/],
      ['no content type', post({ body: cat, headers: {} }), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', /No content type/],
      ['octet-stream', post({ body: cat, headers: { 'content-type': 'application/octet-stream' } }), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', /octet-stream/],
      ['not an image', postImage(server.url, Buffer.from('this is not a JPEG at all')), 400, 'BAD_IMAGE', /Not an image or a corrupt image/],
      ['truncated JPEG', postImage(server.url, cat.subarray(0, 3000)), 400, 'BAD_IMAGE', /corrupt image/],
      ['empty body', postImage(server.url, Buffer.alloc(0)), 400, 'EMPTY_IMAGE', /empty/],
      ['body over --max-body', postImage(server.url, Buffer.concat([cat, Buffer.alloc(1024 * 1024)])), 413, 'FST_ERR_CTP_BODY_TOO_LARGE', /over the limit of 1048576 bytes/],
      ['pixels over --max-pixels', postImage(server.url, big, 'image/png'), 413, 'TOO_MANY_PIXELS', /2500x2000 = 5000000 pixels, more than the limit of 4000000 pixels \(the server's --max-pixels\)/],
      ['PNG header bomb', postImage(server.url, pngHeaderBomb(100_000, 100_000), 'image/png'), 413, 'TOO_MANY_PIXELS', /100000x100000/],
      ['SVG by type', postImage(server.url, svg, 'image/svg+xml'), 415, 'SVG_REFUSED', /--allow-svg/],
      ['SVG disguised as PNG', postImage(server.url, svg, 'image/png'), 415, 'SVG_REFUSED', /SVG images are refused/],
      ['top=0', postImage(server.url, cat, 'image/jpeg', '?top=0'), 400, 'BAD_PARAMETER', /^Expected positive integer for top but received "0"$/],
      ['top=abc', postImage(server.url, cat, 'image/jpeg', '?top=abc'), 400, 'BAD_PARAMETER', /^Expected positive integer for top but received "abc"$/],
      ['multipart file over --max-body', form([{ field: 'image', name: 'a.jpg', type: 'image/jpeg', bytes: Buffer.concat([cat, Buffer.alloc(1024 * 1024)]) }]).then((f) => post(f)), 413, 'FST_REQ_FILE_TOO_LARGE', /over the limit/],
      ['multipart over --max-files', form(Array.from({ length: 5 }, (_, i) => ({ field: 'image', name: `${i}.jpg`, type: 'image/jpeg', bytes: cat }))).then((f) => post(f)), 413, 'FST_FILES_LIMIT', /More than 4 files/],
      ['multipart wrong field', form([{ field: 'photo', name: 'a.jpg', type: 'image/jpeg', bytes: cat }]).then((f) => post(f)), 400, 'BAD_FIELD', /'photo'/],
      ['multipart text part', form([{ field: 'image', name: 'a.txt', type: 'text/plain', bytes: cat }]).then((f) => post(f)), 415, 'UNSUPPORTED_MEDIA_TYPE', /a\.txt.*text\/plain/],
      ['multipart no image', form([]).then((f) => post(f)), 400, 'NO_IMAGE', /no 'image' part/],
      ['multipart one corrupt of two', form([
        { field: 'image', name: 'good.jpg', type: 'image/jpeg', bytes: cat },
        { field: 'image', name: 'bad.jpg', type: 'image/jpeg', bytes: Buffer.from('garbage') },
      ]).then((f) => post(f)), 400, 'BAD_IMAGE', /^Image 2 \(bad\.jpg\): Not an image/],
    ];
    const replies = await Promise.all(cases.map((c) => c[1]));
    cases.forEach(([what, , status, code, message], i) => {
      const r = replies[i]!;
      expect([what, r.status], r.text).toEqual([what, status]);
      expect(r.headers['content-type'], what).toMatch(/^application\/json/);
      expect(r.json, what).toEqual({ statusCode: status, error: expect.any(String), code, message: expect.stringMatching(message) });
    });
    // Nothing above hurt the server.
    expectSame((await postImage(server.url, cat)).json.predictions, images[0]!.all);
  });

  it('a failing request never affects the others: good and bad requests interleaved concurrently', async () => {
    const jobs = Array.from({ length: 40 }, (_, i) => {
      const img = images[i % images.length]!;
      return i % 2 === 0 ? { img, p: postImage(server.url, img.bytes) } : { img: null, p: postImage(server.url, img.bytes.subarray(0, 500)) };
    });
    for (const j of jobs) {
      const r = await j.p;
      if (j.img === null) {
        expect(r.status).toBe(400);
      } else {
        expect(r.status, r.text).toBe(200);
        expectSame(r.json.predictions, j.img.all);
      }
    }
  });

  it('answers 200 concurrent requests correctly, micro-batched', async () => {
    const before = (await request(`${server.url}/metrics`)).text;
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => postImage(server.url, images[i % images.length]!.bytes)));
    replies.forEach((r, i) => {
      expect(r.status, r.text).toBe(200);
      expectSame(r.json.predictions, images[i % images.length]!.all);
    });
    const after = (await request(`${server.url}/metrics`)).text;
    expect(after).toMatch(/^# TYPE mobilenet_batch_size histogram$/m);
    const batches = metric(after, 'mobilenet_batch_size_count')! - (metric(before, 'mobilenet_batch_size_count') ?? 0);
    const batched = metric(after, 'mobilenet_batch_size_sum')! - (metric(before, 'mobilenet_batch_size_sum') ?? 0);
    expect(batched).toBe(200); // every image went through exactly one inference call
    expect(batches).toBeLessThan(200); // some calls ran several images
    expect(metric(after, 'mobilenet_http_requests_total{method="POST",route="/v1/classify",status="200"}')).toBeGreaterThanOrEqual(200);
    expect(metric(after, 'mobilenet_queue_depth')).toBe(0);
    expect(after).toMatch(/^mobilenet_http_request_duration_seconds_bucket\{le="\+Inf",route="\/v1\/classify"\} \d+$/m);
    expect(after).toMatch(/^process_resident_memory_bytes \d+/m);
  });
});

describe.skipIf(!hasShared)('mobilenet serve under pressure', () => {
  it('refuses with 503 + Retry-After when the bounded queue is full, and answers the rest correctly', async () => {
    const weights = shared('models', 'mobilenet_v1_0.25_224', 'model.json');
    const server = await startServer(['--weights', weights, '--max-queue', '2', '--concurrency', '1', '--max-batch', '1', '--threads', '1']);
    try {
      const model = await loadModel(weights, { threads: 1 });
      const catFile = shared('images', 'cat.jpg');
      const all = await classify(model, catFile, { topK: 1000 });
      model.dispose();
      const cat = fs.readFileSync(catFile);
      const replies = await Promise.all(Array.from({ length: 40 }, () => postImage(server.url, cat)));
      const busy = replies.filter((r) => r.status === 503);
      const ok = replies.filter((r) => r.status === 200);
      expect(busy.length + ok.length).toBe(40);
      expect(busy.length).toBeGreaterThan(0);
      expect(ok.length).toBeGreaterThan(0);
      for (const r of busy) {
        expect(r.headers['retry-after']).toBe('1');
        expect(r.json).toEqual({ statusCode: 503, error: 'Service Unavailable', code: 'QUEUE_FULL', message: expect.stringMatching(/busy/) });
      }
      for (const r of ok) expectSame(r.json.predictions, all);
      const m = (await request(`${server.url}/metrics`)).text;
      expect(metric(m, 'mobilenet_http_requests_total{method="POST",route="/v1/classify",status="503"}')).toBe(busy.length);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('SIGTERM during load: every accepted request is answered, later ones refused, exit code 0', async () => {
    const weights = shared('models', 'mobilenet_v1_0.25_224', 'model.json');
    const server = await startServer(['--weights', weights, '--concurrency', '1', '--max-batch', '2', '--threads', '1']);
    const model = await loadModel(weights, { threads: 1 });
    const sample = shared('images', 'imagenet-sample');
    const files = fs.readdirSync(sample).filter((f) => f.endsWith('.JPEG')).sort().slice(0, 10).map((f) => `${sample}/${f}`);
    const refs = await Promise.all(files.map((f) => classify(model, f, { topK: 1000 })));
    model.dispose();
    const bytes = files.map((f) => fs.readFileSync(f));
    const n = 80;
    const inflight = Array.from({ length: n }, (_, i) => postImage(server.url, bytes[i % bytes.length]!));
    const answered = new Set<number>();
    inflight.forEach((p, i) => void p.then(() => answered.add(i), () => answered.add(i)));
    // Wait until the server has admitted all of them (answered or in flight), then SIGTERM mid-run.
    for (;;) {
      const m = await request(`${server.url}/metrics`);
      const admitted = metric(m.text, 'mobilenet_http_requests_in_flight')!;
      if (admitted >= 1 && admitted + answered.size >= n) break;
      if (answered.size === n) throw new Error('all requests finished before SIGTERM; the test proves nothing');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(answered.size).toBeLessThan(n);
    server.child.kill('SIGTERM');
    while (!/SIGTERM/.test(server.stderr())) await new Promise((r) => setTimeout(r, 10));
    // Requests after SIGTERM are refused (503 while draining, or connection refused once closed).
    const late = await Promise.allSettled(Array.from({ length: 5 }, () => postImage(server.url, bytes[0]!)));
    for (const r of late) {
      if (r.status === 'fulfilled') expect(r.value.status).toBe(503);
      else expect((r.reason as NodeJS.ErrnoException).code).toMatch(/ECONNREFUSED|ECONNRESET/);
    }
    const replies = await Promise.all(inflight);
    replies.forEach((r, i) => {
      expect(r.status, r.text).toBe(200);
      expectSame(r.json.predictions, refs[i % refs.length]!);
    });
    expect(await server.exited).toBe(0);
    expect(server.stderr()).toMatch(/SIGTERM: finishing accepted requests/);
    expect(server.stdout()).toMatch(/closed\n$/);
  });

  it('answers 503 + Retry-After while the event loop lags (the server process is stopped 90% of the time), then recovers', async () => {
    // The lag is made from outside, by wall-clock time, not by work: SIGSTOP/SIGCONT cycles of
    // 900 ms stopped / 50 ms running. @fastify/under-pressure samples the mean event-loop delay
    // (ticks of a 10 ms timer) every second: a second that is mostly spent stopped holds a few
    // ticks of ~900 ms and at most ~15 of 10 ms, so its mean is far above the 20 ms threshold
    // whatever the machine's speed (load only makes ticks longer and fewer). Bounded polling
    // (60 s) waits for the sample, not a fixed time.
    const weights = shared('models', 'mobilenet_v1_0.25_224', 'model.json');
    const server = await startServer(['--weights', weights, '--max-event-loop-delay', '20', '--threads', '1']);
    const pid = server.child.pid!;
    const cat = fs.readFileSync(shared('images', 'cat.jpg'));
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    /** Polls until a reply has `status` (bounded); returns it. */
    const until = async (status: number, what: string): Promise<Awaited<ReturnType<typeof postImage>>> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const r = await postImage(server.url, cat);
        if (r.status === status) return r;
        if (Date.now() > deadline) throw new Error(`${what}: no ${status} within 60 s (last: ${r.status} ${r.text})`);
        await sleep(100);
      }
    };
    let stopped = false;
    /** Stops and continues the server process in cycles until end() is called. */
    const stutter = (): { end: () => Promise<void> } => {
      let on = true;
      const loop = (async () => {
        while (on) {
          process.kill(pid, 'SIGSTOP');
          stopped = true;
          await sleep(900);
          process.kill(pid, 'SIGCONT');
          stopped = false;
          await sleep(50);
        }
      })();
      return {
        end: async () => {
          on = false;
          await loop;
        },
      };
    };
    try {
      // Before: not under pressure (an idle server answers 200).
      const before = await until(200, 'before the lag');
      expect(before.json.predictions).toHaveLength(5);
      // During: 503 from under-pressure, with Retry-After, before any image is read.
      const s = stutter();
      let busy: Awaited<ReturnType<typeof postImage>>;
      try {
        busy = await until(503, 'while lagging');
        // Only the work route sheds load: the probes and the metrics answer 200 while it lags.
        for (const probe of ['/healthz', '/readyz', '/metrics']) {
          const r = await request(`${server.url}${probe}`);
          expect(r.status, `${probe} while lagging: ${r.text}`).toBe(200);
        }
        const metrics = (await request(`${server.url}/metrics`)).text;
        expect(metrics).toMatch(/status="503"/);
      } finally {
        await s.end();
      }
      expect(busy.headers['retry-after']).toBe('1');
      expect(busy.json).toEqual({ statusCode: 503, error: 'Service Unavailable', code: 'FST_UNDER_PRESSURE', message: expect.any(String) });
      // After: it recovers by itself.
      const after = await until(200, 'after the lag');
      expect(after.json.predictions).toHaveLength(5);
    } finally {
      if (stopped) process.kill(pid, 'SIGCONT');
      expect(await server.stop()).toBe(0);
    }
  }, 240_000);

  it('accepts SVG with --allow-svg', async () => {
    const weights = shared('models', 'mobilenet_v1_0.25_224', 'model.json');
    const server = await startServer(['--weights', weights, '--allow-svg', '--threads', '1']);
    try {
      const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300"><rect width="300" height="300" fill="#3a7"/><circle cx="150" cy="150" r="90" fill="#fc3"/></svg>';
      const r = await postImage(server.url, svg, 'image/svg+xml');
      expect(r.status, r.text).toBe(200);
      const model = await loadModel(weights, { threads: 1 });
      const ref = await classify(model, Buffer.from(svg), { topK: 1000 });
      model.dispose();
      expectSame(r.json.predictions, ref);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
