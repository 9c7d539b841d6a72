/**
 * `npx tsx bench/export-onnx.ts <model> -o model.onnx [--batch N]`
 *
 * Writes the ONNX (opset 14) form of a model this project loads: <model> is a
 * TF.js model.json (or its directory), a Keras .h5/.keras file with a model
 * config, or an architecture name (v1, v2, v3-small, v3-large) for seeded
 * random weights. The graph is the lowered one (BatchNorm folded,
 * activations fused); input NHWC float32 [N, H, W, C], preprocessed as the
 * model expects. Checks onnxruntime-node against the reference backend on one
 * random input unless --no-check.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { analyzeModel } from '../lib/keras/layers.js';
import { lowerModel } from '../lib/keras/lower.js';
import { randomWeights } from '../lib/keras/random.js';
import { readModelFile } from '../lib/formats/index.js';
import { buildArchitecture, ARCHITECTURES } from '../lib/architectures/index.js';
import { exportOnnx } from './onnx/export.js';
import { compileGraph } from '../lib/runtime.js';
import { mulberry32 } from '../lib/keras/random.js';
import type { Architecture, KerasModelConfig, NamedWeights } from '../lib/keras/types.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    output: { type: 'string', short: 'o' },
    batch: { type: 'string' },
    'no-check': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
const source = positionals[0];
if (values.help || source === undefined || values.output === undefined) {
  process.stderr.write('usage: npx tsx bench/export-onnx.ts <model.json|dir|.h5|.keras|v1|v2|v3-small|v3-large> -o out.onnx [--batch N] [--no-check]\n');
  process.exit(values.help ? 0 : 1);
}
const batch = values.batch === undefined ? 'dynamic' : Number(values.batch);
if (batch !== 'dynamic' && !(Number.isInteger(batch) && batch > 0)) {
  process.stderr.write(`Expected positive integer for --batch but received ${JSON.stringify(values.batch)}\n`);
  process.exit(1);
}

let config: KerasModelConfig;
let weights: NamedWeights;
if ((ARCHITECTURES as readonly string[]).includes(source)) {
  config = buildArchitecture(source as Architecture, {});
  weights = randomWeights(analyzeModel(config), 1);
} else {
  const file = await readModelFile(source);
  if (file.config === undefined) {
    process.stderr.write(`${file.path} holds weights only (no model config): convert it with its architecture first (mobilenet convert)\n`);
    process.exit(1);
  }
  config = file.config;
  weights = file.weights;
}
const analysis = analyzeModel(config);
const { graph, inputShape } = lowerModel(analysis, weights);
const bytes = exportOnnx(graph, { batch, graphName: analysis.name });
fs.writeFileSync(values.output, bytes);
process.stdout.write(`wrote ${values.output}: ${(bytes.length / 1e6).toFixed(1)} MB, ${graph.nodes.length} graph nodes, input NHWC [${batch === 'dynamic' ? 'N' : batch}, ${inputShape.join(', ')}]\n`);

if (!values['no-check']) {
  const ort = await import('onnxruntime-node');
  const n = batch === 'dynamic' ? 1 : batch;
  const r = mulberry32(7);
  const x = Float32Array.from({ length: n * inputShape.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1);
  const rt = await compileGraph(graph, { backend: 'reference', batch: n });
  const ours = rt.runSync(x);
  rt.dispose();
  const session = await ort.InferenceSession.create(bytes);
  const res = await session.run({ [session.inputNames[0] as string]: new ort.Tensor('float32', x, [n, ...inputShape]) });
  const theirs = res[session.outputNames[0] as string]!.data as Float32Array;
  await session.release();
  let diff = 0;
  for (let i = 0; i < ours.length; i++) diff = Math.max(diff, Math.abs((ours[i] as number) - (theirs[i] as number)));
  const ok = theirs.length === ours.length && diff <= 1e-4;
  process.stdout.write(`onnxruntime-node vs reference backend: max abs diff ${diff.toExponential(2)} (${ok ? 'ok' : 'MISMATCH'}, tolerance 1e-4)\n`);
  if (!ok) process.exit(2);
}
graph.dispose();
