/**
 * The x86-64 side of `npm run test:arm64`: classifies test/arm64/images.ts's
 * images natively with the default model and writes, for each, the top-5
 * indices, the 1000 probabilities and the preprocessed input (raw float32),
 * so that the emulated arm64 run can compare both its end-to-end results and
 * its results on the very same input tensors.
 *
 *   tsx test/arm64/x64-reference.ts <out-dir>
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../lib/model.js';
import { defaultModelPath } from '../../lib/default-model.js';
import { loadImageTensor } from '../../lib/image.js';
import { xnnpackInfo } from '../../lib/binding.js';
import { arm64Images, THREADS, top5, type ImageResult } from './images.js';

const out = process.argv[2];
if (out === undefined) throw new Error('usage: tsx test/arm64/x64-reference.ts <out-dir>');
fs.mkdirSync(out, { recursive: true });
const model = await loadModel(defaultModelPath(), { threads: THREADS });
const [height, width] = model.inputShape as [number, number, number];
const results: ImageResult[] = [];
for (const [i, file] of arm64Images().entries()) {
  const input = await loadImageTensor(file, { width, height, preprocessing: model.preprocessing });
  const probs = await model.predict(input);
  const inputFile = path.join(out, `input-${i}.f32`);
  fs.writeFileSync(inputFile, Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  results.push({ file, top5: top5(probs), probs: Array.from(probs), input: inputFile });
}
model.dispose();
const info = xnnpackInfo();
fs.writeFileSync(path.join(out, 'x64.json'), JSON.stringify({ arch: process.arch, addon: info.path, cpu: info.cpu, results }));
process.stdout.write(`x86-64 reference: ${results.length} images on ${info.path} (${process.arch}, ${info.cpu?.name ?? 'cpu?'})\n`);
