/**
 * `npm run accuracy`: top-1 / top-5 on the 250 labelled ImageNet sample
 * images of ../shared for the shared MobileNet V1 0.75 and 0.25 models and
 * the shipped default model, next to the TensorFlow.js reference table of
 * ../shared/README.md. Exit code 1 when a model is more than 0.5 points off.
 *
 *   npm run accuracy -- [--batch B] [--threads N] [--backend native|reference]
 *
 * MOBILENET_SHARED_DIR overrides ../shared.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { classifyBatch } from '../lib/classify.js';
import { defaultModelPath, hasDefaultModel } from '../lib/default-model.js';
import { loadModel } from '../lib/model.js';
import { sharedDirSetting } from '../test/helpers/env.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sharedDir = path.resolve(root, sharedDirSetting);

interface Row {
  name: string;
  weights: string;
  /** TF.js wasm reference of ../shared/README.md (percent). */
  reference: { top1: number; top5: number; what: string };
}

const rows: Row[] = [
  {
    name: 'V1 0.75-224 (float32, shared)',
    weights: path.join(sharedDir, 'models', 'mobilenet_v1_0.75_224', 'model.json'),
    reference: { top1: 88.4, top5: 97.6, what: 'tfjs wasm' },
  },
  {
    name: 'V1 0.25-224 (float32, shared)',
    weights: path.join(sharedDir, 'models', 'mobilenet_v1_0.25_224', 'model.json'),
    reference: { top1: 61.2, top5: 81.2, what: 'tfjs wasm' },
  },
];
if (hasDefaultModel()) {
  rows.push({
    name: 'V1 0.75-224 default (shipped)',
    weights: defaultModelPath(),
    reference: { top1: 88.4, top5: 97.6, what: 'tfjs wasm, float32' },
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      batch: { type: 'string', default: '1' },
      threads: { type: 'string' },
      backend: { type: 'string', default: 'native' },
    },
  });
  const batch = Number(values.batch);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  const backend = values.backend as 'native' | 'reference';
  const imageDir = path.join(sharedDir, 'images', 'imagenet-sample');
  if (!fs.existsSync(path.join(imageDir, 'labels.json'))) {
    console.error(`accuracy: ${imageDir}/labels.json not found (set MOBILENET_SHARED_DIR)`);
    return 1;
  }
  const labels = JSON.parse(fs.readFileSync(path.join(imageDir, 'labels.json'), 'utf8')) as Record<string, number>;
  const files = Object.keys(labels).sort();

  const table: string[][] = [['model', 'images', 'top-1', 'top-5', 'reference top-1 / top-5', 'Δ top-1', 'Δ top-5', 'ms/image', 'within 0.5']];
  let failed = false;
  for (const row of rows) {
    if (!fs.existsSync(row.weights)) {
      console.error(`accuracy: ${row.weights} missing, skipped`);
      continue;
    }
    const model = await loadModel(row.weights, { batch, threads, backend });
    let top1 = 0;
    let top5 = 0;
    let n = 0;
    let errors = 0;
    const t0 = performance.now();
    try {
      for await (const r of classifyBatch(
        model,
        files.map((f) => path.join(imageDir, f)),
        { batchSize: batch, topK: 5 },
      )) {
        n++;
        if (r.predictions === undefined) {
          errors++;
          continue;
        }
        const want = labels[files[r.position]!]!;
        if (r.predictions[0]!.index === want) top1++;
        if (r.predictions.some((p) => p.index === want)) top5++;
      }
    } finally {
      model.dispose();
    }
    const ms = (performance.now() - t0) / n;
    const p1 = (100 * top1) / n;
    const p5 = (100 * top5) / n;
    const d1 = p1 - row.reference.top1;
    const d5 = p5 - row.reference.top5;
    const ok = Math.abs(d1) <= 0.5 + 1e-9 && Math.abs(d5) <= 0.5 + 1e-9 && errors === 0;
    if (!ok) failed = true;
    table.push([
      row.name,
      String(n),
      `${p1.toFixed(1)}% (${top1})`,
      `${p5.toFixed(1)}% (${top5})`,
      `${row.reference.top1.toFixed(1)} / ${row.reference.top5.toFixed(1)} (${row.reference.what})`,
      `${d1 >= 0 ? '+' : ''}${d1.toFixed(1)}`,
      `${d5 >= 0 ? '+' : ''}${d5.toFixed(1)}`,
      ms.toFixed(1),
      ok ? 'yes' : 'NO',
    ]);
  }
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  const fmt = (r: string[]): string => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  console.log(fmt(table[0]!));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of table.slice(1)) console.log(fmt(r));
  console.log(`\n${files.length} images of ${imageDir}; batch ${batch}, backend ${backend}; ms/image includes decoding (overlapped with inference).`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
