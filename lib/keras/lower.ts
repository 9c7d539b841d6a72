/**
 * Lowering of an analyzed Keras model (config + named weights) to the graph IR:
 *
 * 1. `matchWeights` (`./weights.ts`): every missing, extra or mis-shaped
 *    weight in one `WeightMismatchError`; non-finite weights are an error.
 * 2. Each layer is translated by its registry entry (`./registry.ts`) into
 *    lowered nodes (`./nodes.ts`). Padding "same" is computed as TensorFlow
 *    does (the odd pixel at the end).
 * 3. Unless `fuse: false`, the nodes are fused (`./fuse.ts`: BatchNorm
 *    folding, activation and padding fusion, hard-swish), in linear time.
 * 4. The live nodes are emitted into a `Graph` (`./emit.ts`).
 */
import type { Graph } from '../graph.js';
import { UnsupportedLayerError } from '../errors.js';
import { emitGraphSteps } from './emit.js';
import { fuseNodesSteps } from './fuse.js';
import { NodeBuilder } from './nodes.js';
import { layerEntry } from './registry.js';
import { matchWeightsSteps, type MatchOptions } from './weights.js';
import { runSteps, runStepsAsync, type Steps } from '../cooperative.js';
import type { ModelAnalysis, NamedWeights } from './types.js';

export { samePadding } from './config.js';
export { matchWeights, type MatchOptions } from './weights.js';

export interface LowerOptions extends MatchOptions {
  /** Fold BatchNorm, fuse activations/padding, detect hard-swish. Default true. */
  fuse?: boolean;
}

export interface LowerStats {
  /** Graph nodes emitted. */
  nodes: number;
  /** Affine nodes (BatchNorm, Rescaling, scalar ops) folded into conv/dense weights. */
  foldedAffine: number;
  /** Clamps fused into the producing node. */
  fusedClamps: number;
  /** ZeroPadding2D layers fused into the next convolution. */
  fusedPads: number;
  /** Hard-swish patterns turned into one hardswish node. */
  hardswish: number;
  /** Lowered nodes before fusion. */
  loweredNodes: number;
  /** Fusion passes over the nodes (the last one changes nothing); 0 with `fuse: false`. */
  fusionPasses: number;
  /** Node visits plus consumer-edge updates of the fusion: linear in the nodes (tests bound it). */
  fusionWork: number;
}

export interface LoweredModel {
  graph: Graph;
  /** Per-sample input shape [H, W, C]. */
  inputShape: number[];
  /** Per-sample output shape. */
  outputShape: number[];
  stats: LowerStats;
  /** The weights by the analysis's names (as `matchWeights` returned them). */
  weights: NamedWeights;
}

/** Lowers an analyzed Keras model and its weights to a graph. */
export function lowerModel(analysis: ModelAnalysis, weights: NamedWeights, options: LowerOptions = {}): LoweredModel {
  return runSteps(lowerModelSteps(analysis, weights, options));
}

/** `lowerModel` off the event loop's critical path: in steps, with turns of the event loop between them (lib/cooperative.ts). */
export function lowerModelAsync(analysis: ModelAnalysis, weights: NamedWeights, options: LowerOptions = {}): Promise<LoweredModel> {
  return runStepsAsync(lowerModelSteps(analysis, weights, options));
}

/** `lowerModel` in steps: yields between layers, fusion rewrites and emitted nodes. */
export function* lowerModelSteps(analysis: ModelAnalysis, weights: NamedWeights, options: LowerOptions = {}): Steps<LoweredModel> {
  const matched = yield* matchWeightsSteps(analysis, weights, options);
  const b = new NodeBuilder(matched, options.file);
  for (const layer of analysis.layers) {
    try {
      const entry = layerEntry(layer.name, layer.className);
      b.byLayer.set(layer.name, entry.lowerSteps !== undefined ? yield* entry.lowerSteps(layer, b) : entry.lower(layer, b));
    } catch (e) {
      // The registry's option checks (lib/keras/config.ts `fail`) do not know the file: name it here, as inferLayer does.
      throw e instanceof UnsupportedLayerError ? e.inFile(b.file) : e;
    }
    yield;
  }
  let output = b.byLayer.get(analysis.outputLayer);
  if (output === undefined) throw new UnsupportedLayerError(analysis.outputLayer, 'unknown', 'the output layer was not lowered', b.file);
  const stats: LowerStats = { nodes: 0, foldedAffine: 0, fusedClamps: 0, fusedPads: 0, hardswish: 0, loweredNodes: b.nodes.length, fusionPasses: 0, fusionWork: 0 };
  if (options.fuse !== false) {
    const fused = yield* fuseNodesSteps(b.nodes, output);
    output = fused.output;
    Object.assign(stats, fused.counts);
  }
  const graph = yield* emitGraphSteps(b.nodes, output);
  stats.nodes = graph.nodes.length;
  const out = graph.tensors[graph.outputTensor];
  return {
    graph,
    inputShape: [...analysis.inputShape],
    outputShape: out ? [...out.shape] : [...analysis.outputShape],
    stats,
    weights: matched,
  };
}
