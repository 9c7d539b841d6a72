import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../lib/model.js';
import { fromFloatGraph } from '../lib/quantize/qgraph.js';
import { calibrate } from '../lib/quantize/calibrate.js';
import { loadImageTensor } from '../lib/image.js';
const file = process.argv[2] ?? '/work/shared/models/mobilenet_v1_0.75_224/model.json';
const nRef = Number(process.argv[3] ?? 10);
const nNat = Number(process.argv[4] ?? 100);
const dir = '/work/shared/images/imagenet-sample';
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.JPEG')).sort().filter((_, i) => i % 5 === 1 || i % 5 === 3).map((f) => path.join(dir, f));
const samples = await Promise.all(files.slice(0, Math.max(nRef, nNat)).map((f) => loadImageTensor(f, { width: 224, height: 224 })));
const m = await loadModel(file, { backend: 'reference', batch: 1 });
const fg = fromFloatGraph(await m.loweredGraph());
async function* gen(n: number) { yield* samples.slice(0, n); }
for (const [backend, n] of [['native', nNat], ['reference', nRef], ['native', nNat]] as const) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await calibrate(fg, gen(n), { backend, threads: 1 });
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  console.log(JSON.stringify({ backend, images: n, wallS: +wall.toFixed(2), cpuS: +cpu.toFixed(2), cpuPerImageMs: +((1000 * cpu) / n).toFixed(1), wallPerImageMs: +((1000 * wall) / n).toFixed(1) }));
}
