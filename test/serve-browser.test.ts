/**
 * The demo page (`GET /`) in a real headless browser: Debian's `chromium`
 * driven by playwright-core. Upload the cat through the file input, drop
 * examples/jack-o-lantern.jpg onto the drop zone (a DataTransfer holding the
 * file, dispatched as dragenter/dragover/drop events), read the labels off
 * the page, compare with classify() in this process.
 */
import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, type Prediction } from '../lib/classify.js';
import { loadModel } from '../lib/model.js';
import path from 'node:path';
import { startServer, type Server } from './helpers/server.js';
import { hasShared, referenceOutput, repoRoot, shared, sharedLabel } from './helpers/shared.js';

const chromiumPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
if (chromiumPath === undefined) console.warn('[mobilenet-xnnpack tests] chromium not found (apt-get install chromium): demo page test skipped');

describe.skipIf(!hasShared || chromiumPath === undefined)('demo page in headless Chromium', () => {
  let server: Server;
  let browser: Browser;
  let ref: Prediction[];
  let jackRef: Prediction[];
  const jackFile = path.join(repoRoot, 'examples', 'jack-o-lantern.jpg');

  beforeAll(async () => {
    const weights = shared('models', 'mobilenet_v1_0.75_224', 'model.json');
    const model = await loadModel(weights, { threads: 1 });
    ref = await classify(model, shared('images', 'cat.jpg'), { topK: 5 });
    jackRef = await classify(model, jackFile, { topK: 5 });
    model.dispose();
    server = await startServer(['--weights', weights, '--max-batch', '2']);
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    await browser?.close();
    expect(await server?.stop()).toBe(0);
  });

  it('picks the cat, shows it with its top-5 labels as bars and the latency', async () => {
    const page = await browser.newPage({ viewport: { width: 760, height: 380 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.textContent('#model')).toMatch(/^mobilenet_0\.75_224 · v1 · 224×224×3 input · 1000 classes · 2,601,976 parameters$/);
    await page.setInputFiles('#file', shared('images', 'cat.jpg'));
    await page.waitForSelector('#results li:nth-child(5)');
    const labels = await page.locator('#results .label').all();
    const rows = await Promise.all(
      labels.map(async (label, i) => ({
        label: await label.textContent(),
        index: Number(await label.getAttribute('data-index')),
        prob: await page.locator('#results .prob').nth(i).textContent(),
        bar: /width: ([\d.]+)%/.exec((await page.locator('#results .bar span').nth(i).getAttribute('style')) ?? '')?.[1] ?? '',
      })),
    );
    expect(rows.map((r) => r.index)).toEqual(ref.map((p) => p.index));
    expect(rows[0]!.label).toBe(sharedLabel(referenceOutput('0.75', 'cat.jpg').top5[0]!).replace(/_/g, ' ')); // the TF.js reference's top-1
    rows.forEach((r, i) => {
      expect(r.label).toBe(ref[i]!.label.replace(/_/g, ' '));
      expect(r.prob).toBe(`${(ref[i]!.probability * 100).toFixed(1)}%`);
      expect(parseFloat(r.bar)).toBeCloseTo(ref[i]!.probability * 100, 3);
    });
    expect(await page.textContent('#status')).toMatch(/^top 5 in \d+ ms$/);
    // The preview shows the picked image, decoded by the browser.
    expect(await page.evaluate('document.getElementById("preview").naturalWidth')).toBe(359);
    expect(errors).toEqual([]);
  });

  it('classifies an image dropped onto the drop zone (a real DataTransfer drop event)', async () => {
    const page = await browser.newPage({ viewport: { width: 760, height: 380 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.textContent('#model')).toMatch(/parameters$/);
    // The file is built in the page from the bytes on disk, as the browser does for a file dragged in from the desktop.
    const dataTransfer = await page.evaluateHandle(
      ({ b64, name }) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        // (tsconfig has no DOM types: the browser's DataTransfer typed by hand)
        const dt = new (globalThis as unknown as { DataTransfer: new () => { items: { add(file: File): void } } }).DataTransfer();
        dt.items.add(new File([bytes], name, { type: 'image/jpeg' }));
        return dt;
      },
      { b64: fs.readFileSync(jackFile).toString('base64'), name: 'jack-o-lantern.jpg' },
    );
    await page.dispatchEvent('#drop', 'dragenter', { dataTransfer });
    await page.dispatchEvent('#drop', 'dragover', { dataTransfer });
    expect(await page.getAttribute('#drop', 'class')).toBe('over'); // the drop zone is highlighted
    await page.dispatchEvent('#drop', 'drop', { dataTransfer });
    await page.waitForSelector('#results li:nth-child(5)');
    expect(await page.getAttribute('#drop', 'class')).toBe('');
    const top = page.locator('#results .label').first();
    expect(await top.textContent()).toBe(jackRef[0]!.label.replace(/_/g, ' '));
    expect(Number(await top.getAttribute('data-index'))).toBe(jackRef[0]!.index);
    expect(await page.locator('#results .prob').first().textContent()).toBe(`${(jackRef[0]!.probability * 100).toFixed(1)}%`);
    const indices = await Promise.all((await page.locator('#results .label').all()).map(async (l) => Number(await l.getAttribute('data-index'))));
    expect(indices).toEqual(jackRef.map((p) => p.index));
    expect(await page.textContent('#status')).toMatch(/^top 5 in \d+ ms$/);
    // The preview shows the dropped file, decoded by the browser.
    const meta = await sharp(jackFile).metadata();
    await expect.poll(() => page.evaluate('document.getElementById("preview").naturalWidth')).toBe(meta.width);
    expect(errors).toEqual([]);
  });

  it('shows the server\'s error for a file that is not an image', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.setInputFiles('#file', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a png') });
    await expect.poll(() => page.textContent('#status')).toMatch(/^400: Image|^400: Not an image or a corrupt image/);
    expect(await page.$$('#results li')).toHaveLength(0);
  });
});
