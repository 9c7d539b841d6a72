/**
 * int8 vs float32 accuracy on ../shared/images/imagenet-sample (250 labelled images, one per class
 * 0, 4, …, 996), with calibration images taken from outside the evaluated set:
 *
 *   split: the 250 files sorted by name; position i % 5 ∈ {1, 3} → calibration (100 images),
 *          the other 150 → evaluation. Float32 and int8 are scored on the same 150.
 *
 *   npx tsx bench/accuracy-int8.ts <model.json | nsfwjs> [--eval N] [--no-bias-correction] [--save DIR]
 *
 *   --method mse: activation ranges by least expected quantization error (default min/max).
 *
 *   --images N: calibrate on the first N of the 100 calibration images (default 100).
 *   --float-layers a,b: keep these layers (node names, e.g. conv1) in float32.
 *   --equalization off|free|all: activation range equalization (default free).
 *   --reference: score int8 on the TypeScript int8 reference kernels instead of XNNPACK.
 *   --int8-classifier / --float-classifier: quantize the classifier head, or keep it float32 (default: the quantizer's).
 *
 * Both run on XNNPACK (1 thread): float32 from the model file, int8 from the model `quantizeModel`
 * saved (ops the loaded build lacks in int8 kept float32, as `loadModel(.., { precision: 'int8' })`
 * does) and `loadModel` read back. `nsfwjs` quantizes
 * nsfwjs's MobileNetV2 (5 classes, its own x/255 preprocessing; not ImageNet) and reports top-1
 * agreement with float32 on the evaluated images.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import os from 'node:os';
import { loadModel } from '../lib/model.js';
import { quantizeModel } from '../lib/quantize/index.js';
import { xnnpackInfo } from '../lib/binding.js';
import { loadImageTensor } from '../lib/image.js';
import { extractNsfwjsMobileNetV2 } from '../test/helpers/nsfwjs.js';
import { shared } from '../test/helpers/shared.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    eval: { type: 'string' }, images: { type: 'string' }, 'no-bias-correction': { type: 'boolean' }, save: { type: 'string' }, method: { type: 'string' },
    reference: { type: 'boolean' }, 'float-layers': { type: 'string' }, 'int8-classifier': { type: 'boolean' }, 'float-classifier': { type: 'boolean' },
    equalization: { type: 'string' },
  },
});
const target = positionals[0];
if (target === undefined) throw new Error('usage: accuracy-int8.ts <model.json | nsfwjs> [--eval N]');
const dir = shared('images', 'imagenet-sample');
const labels = JSON.parse(fs.readFileSync(path.join(dir, 'labels.json'), 'utf8')) as Record<string, number>;
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.JPEG')).sort();
const isCalibration = (i: number): boolean => i % 5 === 1 || i % 5 === 3;
const calibration = files.filter((_, i) => isCalibration(i)).map((f) => path.join(dir, f));
const evaluation = files.filter((_, i) => !isCalibration(i)).slice(0, values.eval ? Number(values.eval) : undefined);

const nsfw = target === 'nsfwjs';
const extracted = nsfw ? extractNsfwjsMobileNetV2() : undefined;
const modelPath = extracted?.modelJsonPath ?? target;

/** nsfwjs's preprocessing: 224×224 RGB (resized as ../shared/README.md says), x / 255. */
async function nsfwInput(file: string): Promise<Float32Array> {
  const rgb = await sharp(file).removeAlpha().toColourspace('srgb').resize(224, 224, { fit: 'cover', position: 'centre' }).raw().toBuffer();
  return Float32Array.from(rgb, (v) => v / 255);
}
const input = async (file: string): Promise<Float32Array> => (nsfw ? nsfwInput(file) : loadImageTensor(file, { width: 224, height: 224 }));

const float = await loadModel(modelPath, { threads: 1 });
let t = Date.now();
const calibrationSamples = nsfw ? await Promise.all(calibration.map(nsfwInput)) : calibration;
const reference = values.reference === true;
const q = await quantizeModel(modelPath, {
  calibration: calibrationSamples,
  images: values.images ? Number(values.images) : 100,
  biasCorrection: !values['no-bias-correction'],
  method: (values.method ?? 'minmax') as 'minmax' | 'mse',
  backend: reference ? 'reference' : 'native',
  ...(values['float-layers'] ? { floatLayers: values['float-layers'].split(',') } : {}),
  ...(values['int8-classifier'] ? { floatHead: false } : values['float-classifier'] ? { floatHead: true } : {}),
  ...(values.equalization ? { equalization: values.equalization as 'off' | 'free' | 'all' } : {}),
});
const quantizeSeconds = (Date.now() - t) / 1000;
const saveDir = values.save ?? fs.mkdtempSync(path.join(os.tmpdir(), 'accuracy-int8-'));
await q.save(saveDir);
const int8 = await loadModel(saveDir, { threads: 1, ...(reference ? { backend: 'reference' as const } : {}) });
const top = (p: Float32Array, k: number): number[] => [...p.keys()].sort((a, b) => p[b]! - p[a]! || a - b).slice(0, k);
const s = { f1: 0, f5: 0, q1: 0, q5: 0, agree: 0 };
t = Date.now();
for (const f of evaluation) {
  const x = await input(path.join(dir, f));
  const pf = await float.predict(x);
  const pq = await int8.predict(x);
  const want = labels[f]!;
  const tf = top(pf, 5);
  const tq = top(pq, 5);
  if (tf[0] === want) s.f1++;
  if (tf.includes(want)) s.f5++;
  if (tq[0] === want) s.q1++;
  if (tq.includes(want)) s.q5++;
  if (tf[0] === tq[0]) s.agree++;
}
const n = evaluation.length;
const pct = (k: number): string => ((100 * k) / n).toFixed(1);
const d = q.describe();
console.log(
  JSON.stringify({
    model: nsfw ? 'nsfwjs MobileNetV2' : target,
    split: `calibrate on ${calibration.length} (sorted position i % 5 in {1,3}), evaluate on ${n} others`,
    int8On: reference ? 'TypeScript int8 reference' : `XNNPACK (${xnnpackInfo().source})`,
    calibrationImages: q.metadata.quantization.calibrationImages,
    biasCorrection: q.metadata.quantization.biasCorrection,
    method: q.metadata.quantization.method,
    floatLayers: q.metadata.quantization.floatLayers ?? [],
    floatHead: q.metadata.quantization.floatHead,
    equalization: q.metadata.quantization.equalization,
    int8Nodes: d.int8Nodes,
    floatNodes: d.floatNodes,
    quantizeSeconds,
    evalSeconds: (Date.now() - t) / 1000,
    ...(nsfw
      ? { top1Agreement: `${s.agree}/${n} (${pct(s.agree)}%)` }
      : { float32: { top1: pct(s.f1), top5: pct(s.f5) }, int8: { top1: pct(s.q1), top5: pct(s.q5) }, top1Agreement: `${s.agree}/${n}` }),
  }),
);
float.dispose();
int8.dispose();
q.dispose();
if (values.save === undefined) fs.rmSync(saveDir, { recursive: true, force: true });
extracted?.cleanup();
