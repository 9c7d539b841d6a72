/**
 * The benchmark's models, each prepared once per run as
 *  - a TF.js layers directory (model.json + shards): what `mobilenet convert`
 *    writes and what the tfjs engines load;
 *  - the Keras config + named weights read back from that directory: what
 *    this project loads (`Model.fromConfig`) and lowers to the Graph IR that
 *    the ONNX exporter and the raw C++ runner consume.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { analyzeModel } from '../../lib/keras/layers.js';
import { lowerModel } from '../../lib/keras/lower.js';
import { randomWeights } from '../../lib/keras/random.js';
import { readModelFile } from '../../lib/formats/index.js';
import { buildArchitecture } from '../../lib/architectures/index.js';
import type { Graph } from '../../lib/graph.js';
import type { Architecture, KerasModelConfig, ModelAnalysis, NamedWeights, Preprocessing } from '../../lib/keras/types.js';
import { mulberry32 } from '../../lib/keras/random.js';

export interface ModelSpec {
  id: string;
  label: string;
  kind: 'shared' | 'nsfwjs' | 'random';
  architecture?: Architecture;
  alpha?: number;
  /** shared: directory under ../shared/models */
  sharedDir?: string;
}

export const MODEL_SPECS: readonly ModelSpec[] = [
  { id: 'v1-0.75-224', label: 'V1 0.75 224 (Keras ImageNet)', kind: 'shared', sharedDir: 'models/mobilenet_v1_0.75_224' },
  { id: 'nsfwjs-v2', label: 'nsfwjs MobileNetV2 (uint8 weights)', kind: 'nsfwjs' },
  { id: 'v1-1.0-224', label: 'V1 1.0 224 (random)', kind: 'random', architecture: 'v1', alpha: 1 },
  { id: 'v2-1.0-224', label: 'V2 1.0 224 (random)', kind: 'random', architecture: 'v2', alpha: 1 },
  { id: 'v3-small-224', label: 'V3-Small 1.0 224 (random)', kind: 'random', architecture: 'v3-small', alpha: 1 },
  { id: 'v3-large-224', label: 'V3-Large 1.0 224 (random)', kind: 'random', architecture: 'v3-large', alpha: 1 },
];

export interface PreparedModel {
  spec: ModelSpec;
  /** model.json of the TF.js layers directory. */
  modelJson: string;
  config: KerasModelConfig;
  weights: NamedWeights;
  analysis: ModelAnalysis;
  /** The lowered graph (BN folded, activations fused). */
  graph: Graph;
  inputShape: number[];
  outputSize: number;
  preprocessing: Preprocessing;
}

/** Writes a float32 TF.js layers model (one weight group, one shard). */
export async function writeLayersModel(dir: string, config: KerasModelConfig, weights: NamedWeights): Promise<string> {
  try {
    const mod = (await import('../../lib/formats/tfjs-write.js' as string)) as {
      writeTfjs?: (dir: string, config: KerasModelConfig, weights: NamedWeights) => Promise<unknown>;
    };
    if (typeof mod.writeTfjs === 'function') {
      await mod.writeTfjs(dir, config, weights);
      const file = path.join(dir, 'model.json');
      if (fs.existsSync(file)) return file;
    }
  } catch {
    // lib/formats/tfjs-write.ts not available: write it here.
  }
  fs.mkdirSync(dir, { recursive: true });
  const entries: Array<{ name: string; shape: number[]; dtype: string }> = [];
  const parts: Buffer[] = [];
  for (const [name, t] of weights) {
    entries.push({ name, shape: t.shape, dtype: 'float32' });
    parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  fs.writeFileSync(path.join(dir, 'group1-shard1of1.bin'), Buffer.concat(parts));
  const json = {
    format: 'layers-model',
    generatedBy: 'mobilenet-xnnpack bench',
    convertedBy: null,
    modelTopology: { keras_version: '2.15.0', backend: 'tensorflow', model_config: config },
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: entries }],
  };
  const file = path.join(dir, 'model.json');
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

/** nsfwjs ships its models as UMD modules (model JSON object + base64 shards): write them out as files. */
function materializeNsfwjs(dir: string): string {
  const require = createRequire(import.meta.url);
  // nsfwjs's "exports" hide package.json: walk up from its entry point.
  let root = path.dirname(require.resolve('nsfwjs'));
  while (path.basename(root) !== 'nsfwjs' && path.dirname(root) !== root) root = path.dirname(root);
  const base = path.join(root, 'dist', 'models', 'mobilenet_v2');
  const model = require(path.join(base, 'model.min.js')) as { modelTopology: unknown; weightsManifest: Array<{ paths: string[] }> };
  fs.mkdirSync(dir, { recursive: true });
  for (const group of model.weightsManifest) {
    for (const p of group.paths) {
      const b64 = require(path.join(base, `${p}.min.js`)) as string;
      fs.writeFileSync(path.join(dir, p), Buffer.from(b64, 'base64'));
    }
  }
  const file = path.join(dir, 'model.json');
  fs.writeFileSync(file, JSON.stringify({ format: 'layers-model', generatedBy: 'nsfwjs 4.4 (bundled)', ...model }));
  return file;
}

export async function prepareModel(spec: ModelSpec, workDir: string, sharedDir: string | null): Promise<PreparedModel> {
  let modelJson: string;
  if (spec.kind === 'shared') {
    if (sharedDir === null) throw new Error(`../shared not found (set MOBILENET_SHARED_DIR): ${spec.id} needs ${spec.sharedDir}`);
    modelJson = path.join(sharedDir, spec.sharedDir as string, 'model.json');
  } else if (spec.kind === 'nsfwjs') {
    modelJson = materializeNsfwjs(path.join(workDir, spec.id));
  } else {
    const config = buildArchitecture(spec.architecture as Architecture, { alpha: spec.alpha ?? 1 });
    const weights = randomWeights(analyzeModel(config), 1);
    modelJson = await writeLayersModel(path.join(workDir, spec.id), config, weights);
  }
  // Everyone reads the same files back.
  const file = await readModelFile(modelJson);
  if (file.config === undefined) throw new Error(`${modelJson} has no model config`);
  const analysis = analyzeModel(file.config);
  const lowered = lowerModel(analysis, file.weights);
  const preprocessing: Preprocessing = analysis.layers.some((l) => l.className === 'Rescaling' && l.inbound[0] === analysis.inputLayer) ? 'none' : 'tf';
  return {
    spec,
    modelJson,
    config: file.config,
    weights: file.weights,
    analysis,
    graph: lowered.graph,
    inputShape: lowered.inputShape,
    outputSize: lowered.outputShape.reduce((a, b) => a * b, 1),
    preprocessing,
  };
}

/** Deterministic input batch in the model's input range ([-1, 1], or [0, 255] when the model rescales). */
export function makeInput(inputShape: readonly number[], preprocessing: Preprocessing, batch: number, seed = 42): Float32Array {
  const n = batch * inputShape.reduce((a, b) => a * b, 1);
  const r = mulberry32(seed);
  const x = new Float32Array(n);
  const scale = preprocessing === 'none' ? 255 : 2;
  const offset = preprocessing === 'none' ? 0 : -1;
  for (let i = 0; i < n; i++) x[i] = r() * scale + offset;
  return x;
}
