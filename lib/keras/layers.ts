/**
 * Keras layer semantics without running anything: for a functional model
 * config, the topological order, every layer's output shape (per sample, no
 * batch), the weights it expects in Keras order and shapes, parameter counts
 * (BatchNorm moving statistics non-trainable, as Keras counts them; every
 * weight of a layer with `trainable: false` non-trainable) and multiply-adds
 * per sample. MACs count Conv2D, DepthwiseConv2D and Dense only, the
 * convention of the published figures (V1 1.0-224: 569M, V2: 300M);
 * pooling, BatchNorm (folded at compile) and elementwise ops count 0.
 *
 * Handles Keras 2.1.4 (`Model`, `Activation('relu6')`), 2.2.4 (nsfwjs),
 * tf.keras 2.x (`Functional`, `TFOpLambda`) configs, and Keras 3 configs
 * already normalized to the Keras 2 form (see `lib/keras/types.ts`).
 */
import { ModelFormatError } from '../errors.js';
import * as v from '../validate.js';
import { flattenModel, type FlatLayer } from './model-config.js';
import { inferLayer, type LayerInference } from './registry.js';
import type { AnalyzedLayer, KerasModelConfig, ModelAnalysis, WeightSpec } from './types.js';

export { inferLayer, SUPPORTED_TFOPS, type LayerInference } from './registry.js';
export { SUPPORTED_ACTIVATIONS } from './activations.js';
export { convOutput, samePadding } from './config.js';

/** Parameter counts of a weight list. */
export function countParams(weights: readonly WeightSpec[]): { total: number; trainable: number } {
  let total = 0;
  let trainable = 0;
  for (const w of weights) {
    const n = v.product(w.shape);
    total += n;
    if (w.trainable) trainable += n;
  }
  return { total, trainable };
}

/**
 * Orders layers so each comes after its inbound layers, keeping the config's
 * order where it already is one: depth-first over inbound layers, iterative
 * (linear in layers + edges, any depth).
 */
function topoSort(layers: FlatLayer[], file: string | undefined): FlatLayer[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const l of layers) {
    for (const i of l.inbound) if (!byName.has(i)) throw new ModelFormatError(`layer '${l.name}' takes input from unknown layer '${i}'`, file);
  }
  /** 1: on the current path, 2: placed. */
  const state = new Map<FlatLayer, 1 | 2>();
  const out: FlatLayer[] = [];
  for (const root of layers) {
    if (state.has(root)) continue;
    const stack: Array<[FlatLayer, number]> = [[root, 0]];
    state.set(root, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [FlatLayer, number];
      const [l, k] = top;
      if (k < l.inbound.length) {
        top[1] = k + 1;
        const dep = byName.get(l.inbound[k] as string) as FlatLayer;
        const st = state.get(dep);
        if (st === 1) throw new ModelFormatError(`the model graph has a cycle through layer '${dep.name}'`, file);
        if (st === undefined) {
          state.set(dep, 1);
          stack.push([dep, 0]);
        }
      } else {
        stack.pop();
        state.set(l, 2);
        out.push(l);
      }
    }
  }
  return out;
}

/**
 * Analyzes a functional model config. `opts.inputShape` (per sample, e.g.
 * [160, 160, 3]) replaces the input layer's shape (needed when it has None
 * dimensions).
 *
 * @throws UnsupportedLayerError for a layer class or option that cannot run (naming `opts.file`)
 * @throws ModelFormatError for a malformed config, or shapes that do not fit (a kernel or pool larger than the input, ...)
 */
export function analyzeModel(config: KerasModelConfig, opts: { inputShape?: readonly number[]; file?: string } = {}): ModelAnalysis {
  const override = opts.inputShape === undefined ? undefined : v.shape(opts.inputShape, 'inputShape', 3);
  const model = flattenModel(config, opts.file);
  const ordered = topoSort(model.layers, opts.file);
  const shapes = new Map<string, number[]>();
  const analyzed: AnalyzedLayer[] = [];
  let total = 0;
  let trainable = 0;
  let macs = 0;
  let inputCount = 0;
  for (const l of ordered) {
    let inf: LayerInference;
    if (l.className === 'InputLayer') {
      inputCount++;
      if (inputCount > 1) throw new ModelFormatError(`model has more than one InputLayer ('${l.name}')`, opts.file);
      inf = override !== undefined ? { outputShape: [...override], weights: [], macs: 0 } : inferLayer(l.className, l.config, [], {}, opts.file);
    } else {
      if (l.inbound.length === 0) throw new ModelFormatError(`layer '${l.name}' has no inbound node`, opts.file);
      inf = inferLayer(l.className, l.config, l.inbound.map((i) => shapes.get(i) as number[]), l.callKwargs, opts.file);
    }
    shapes.set(l.name, inf.outputShape);
    const p = countParams(inf.weights);
    total += p.total;
    trainable += p.trainable;
    macs += inf.macs;
    analyzed.push({
      name: l.name,
      className: l.className,
      config: l.config,
      inbound: l.inbound,
      callKwargs: l.callKwargs,
      outputShape: inf.outputShape,
      weights: inf.weights,
      params: p.total,
      macs: inf.macs,
    });
  }
  const inputLayer = analyzed.find((l) => l.name === model.input);
  if (inputLayer === undefined || inputLayer.className !== 'InputLayer') {
    throw new ModelFormatError(`model input '${model.input}' is not an InputLayer`, opts.file);
  }
  return {
    name: model.name,
    layers: analyzed,
    inputLayer: model.input,
    outputLayer: model.output,
    inputShape: [...inputLayer.outputShape],
    outputShape: [...(shapes.get(model.output) as number[])],
    totalParams: total,
    trainableParams: trainable,
    nonTrainableParams: total - trainable,
    macs,
    nestedModels: model.nested,
  };
}
