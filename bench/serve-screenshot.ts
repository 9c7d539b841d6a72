/**
 * Regenerates docs/serve-demo.png, the README's picture of the demo page:
 * starts `mobilenet serve`, uploads examples/jack-o-lantern.jpg (drawn for
 * this project, licensed with it; see examples/README.md) in headless
 * Chromium (Debian's, via playwright-core), saves a palette PNG.
 *
 *   npx tsx bench/serve-screenshot.ts [weights] [out.png] [image]
 */
import path from 'node:path';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { startServer } from '../test/helpers/server.js';
import { repoRoot, shared } from '../test/helpers/shared.js';

const weights = process.argv[2] ?? shared('models', 'mobilenet_v1_0.75_224', 'model.json');
const out = process.argv[3] ?? path.join(repoRoot, 'docs', 'serve-demo.png');
const image = process.argv[4] ?? path.join(repoRoot, 'examples', 'jack-o-lantern.jpg');
const server = await startServer(['--weights', weights, '--threads', '1']);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 760, height: 380 } });
  await page.goto(`${server.url}/`);
  await page.waitForFunction('document.getElementById("model").textContent.includes("parameters")');
  await page.setInputFiles('#file', image);
  await page.waitForSelector('#results li:nth-child(5)');
  const png = await page.screenshot();
  await sharp(png).png({ palette: true, colours: 128, compressionLevel: 9 }).toFile(out);
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.stop();
}
