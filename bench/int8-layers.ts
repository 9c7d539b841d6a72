/**
 * Per-layer int8 error: quantizes a model on the calibration split of
 * bench/accuracy-int8.ts and, on the calibration images, compares every
 * quantized node's output (dequantized, int8 all the way from the input) with
 * the float32 graph's: SNR in dB = 10·log10(Σ y² / Σ (y_q - y)²). Runs on the
 * TypeScript int8 reference kernels (every op in int8).
 *
 *   npx tsx bench/int8-layers.ts <model.json> [--images N] [--float-layers a,b] [--equalization off|free|all]
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../lib/model.js';
import { loadImageTensor } from '../lib/image.js';
import { QReferenceRuntime } from '../lib/backends/reference-qs8.js';
import { quantizeFloatGraph } from '../lib/quantize/pipeline.js';
import { fromFloatGraph } from '../lib/quantize/qgraph.js';
import { shared } from '../test/helpers/shared.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { images: { type: 'string' }, 'float-layers': { type: 'string' }, equalization: { type: 'string' } } });
const dir = shared('images', 'imagenet-sample');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.JPEG')).sort();
const calibration = files.filter((_, i) => i % 5 === 1 || i % 5 === 3).map((f) => path.join(dir, f));
const n = values.images ? Number(values.images) : 100;
const model = await loadModel(positionals[0]!, { backend: 'reference', batch: 1 });
const lowered = await model.loweredGraph();
const { graph } = await quantizeFloatGraph(lowered, model.inputShape, model.preprocessing, {
  calibration, images: n, ...(values.equalization ? { equalization: values.equalization as 'off' | 'free' | 'all' } : {}), ...(values['float-layers'] ? { floatLayers: values['float-layers'].split(',') } : {}),
}, 'reference');
const fg = fromFloatGraph(lowered);
const frt = new QReferenceRuntime(fg, 1);
const qrt = new QReferenceRuntime(graph, 1);
const fOut = new Float32Array(frt.outputSize);
const qOut = new Float32Array(qrt.outputSize);
let agree = 0;
const stats = new Map<string, { sig: number; err: number; op: string }>();
for (const file of calibration.slice(0, n)) {
  const x = await loadImageTensor(file, { width: 224, height: 224, preprocessing: model.preprocessing });
  frt.run(x, fOut);
  qrt.run(x, qOut);
  for (const node of graph.nodes) {
    if (node.op === 'convert' || node.name === undefined) continue;
    const fn = fg.nodes.find((m) => m.name === node.name && m.op === node.op);
    if (fn === undefined) continue;
    const t = graph.tensors[node.output]!;
    const fv = frt.values(fn.output) as Float32Array;
    const qv = qrt.values(node.output);
    const s = stats.get(node.name) ?? { sig: 0, err: 0, op: node.op };
    for (let i = 0; i < fv.length; i++) {
      const y = t.dtype === 'qint8' ? t.scale! * (qv[i]! - t.zeroPoint!) : qv[i]!;
      s.sig += fv[i]! ** 2;
      s.err += (y - fv[i]!) ** 2;
    }
    stats.set(node.name, s);
  }
  const top = (p: Float32Array): number => p.indexOf(Math.max(...p));
  process.stderr.write(top(fOut) === top(qOut) ? '.' : 'x');
  if (top(fOut) === top(qOut)) agree++;
}
process.stderr.write('\n');
console.log(`top-1 agreement with float32 on the calibration images: ${agree}/${n}`);
// Tensors rescaled by equalization differ from the float graph's by their channel scales: their SNR is not meaningful.
for (const [name, s] of stats) console.log(`${name.padEnd(24)} ${s.op.padEnd(16)} ${(10 * Math.log10(s.sig / s.err)).toFixed(1)} dB`);
