/**
 * The four MobileNet families with Keras Applications semantics. Each
 * builder returns the Keras 2 functional config tf.keras would give for
 * that application (`lib/keras/types.ts`); `analyzeModel` gives shapes,
 * parameters and MACs, `randomWeights` seeded weights, the lowering turns
 * config + weights into a graph.
 */
import { runSteps, type Steps } from '../cooperative.js';
import { analyzeModel } from '../keras/layers.js';
import type { Architecture, KerasModelConfig, ModelAnalysis, Preprocessing } from '../keras/types.js';
import * as v from '../validate.js';
import { mobilenetV1, type MobileNetV1Options } from './v1.js';
import { mobilenetV2, type MobileNetV2Options } from './v2.js';
import { mobilenetV3Large, mobilenetV3Small, type MobileNetV3Options } from './v3.js';

export { mobilenetV1, V1_BLOCKS, type MobileNetV1Options } from './v1.js';
export { mobilenetV2, V2_STAGES, type MobileNetV2Options } from './v2.js';
export { mobilenetV3Large, mobilenetV3Small, V3_LARGE, V3_SMALL, type MobileNetV3Options } from './v3.js';
export { makeDivisible, correctPad } from './common.js';

export const ARCHITECTURES: readonly Architecture[] = ['v1', 'v2', 'v3-small', 'v3-large'];

/** Alphas Keras publishes ImageNet weights for (any positive alpha builds). */
export const KERAS_ALPHAS: Readonly<Record<Architecture, readonly number[]>> = {
  v1: [0.25, 0.5, 0.75, 1.0],
  v2: [0.35, 0.5, 0.75, 1.0, 1.3, 1.4],
  'v3-small': [0.75, 1.0],
  'v3-large': [0.75, 1.0],
};

export type ArchitectureOptions = MobileNetV1Options & MobileNetV2Options & MobileNetV3Options;

/** Builds the Keras config of an architecture; options as the named builders take them. */
export function buildArchitecture(arch: Architecture, options: ArchitectureOptions = {}): KerasModelConfig {
  switch (v.oneOf(arch, 'arch', ARCHITECTURES)) {
    case 'v1':
      return mobilenetV1(options);
    case 'v2':
      return mobilenetV2(options);
    case 'v3-small':
      return mobilenetV3Small(options);
    case 'v3-large':
      return mobilenetV3Large(options);
  }
}

/** How images are prepared for an architecture: V1/V2 'tf' (x/127.5 - 1), V3 'none' when it includes its Rescaling layer. */
export function preprocessingFor(arch: Architecture, options: { includePreprocessing?: boolean } = {}): Preprocessing {
  if (arch === 'v3-small' || arch === 'v3-large') return options.includePreprocessing === false ? 'tf' : 'none';
  return 'tf';
}

/** What `identifyArchitecture` recognized. */
export interface IdentifiedArchitecture {
  architecture: Architecture;
  alpha: number;
  /** V1 only. */
  depthMultiplier?: number;
  /** V3 only. */
  minimalistic?: boolean;
  /** Whether the Keras top (classifier) of that application is present. */
  includeTop: boolean;
  /** Classes of the Keras top when present. */
  classes?: number;
}

/** The weight that holds the classifier of each family (its last dimension is the class count). */
const TOP_WEIGHT: Record<Architecture, string> = {
  v1: 'conv_preds/kernel',
  v2: 'predictions/kernel',
  'v3-small': 'Logits/kernel',
  'v3-large': 'Logits/kernel',
};

function candidates(names: ReadonlySet<string>): Architecture[] {
  const has = (n: string): boolean => names.has(n);
  if (has('conv_dw_1/depthwise_kernel')) return ['v1'];
  if (has('expanded_conv_project/kernel') || has('block_1_expand/kernel')) return ['v2'];
  if (has('expanded_conv/depthwise/depthwise_kernel')) return has('expanded_conv_14/project/kernel') ? ['v3-large'] : ['v3-small'];
  return [];
}

/**
 * Recognizes a Keras MobileNet from its weights' names and shapes
 * (`<layer>/<weight>` → shape, e.g. from an analysis or a weights-only .h5):
 * the family, alpha (and V1 depth multiplier, V3 minimalistic) for which
 * every backbone weight the builder expects is present with the same shape.
 * Models with a fine-tuned head on a MobileNet backbone are recognized too
 * (`includeTop` false). Undefined when nothing matches.
 */
export function identifyArchitecture(shapes: ReadonlyMap<string, readonly number[]>, inputShape: readonly number[] = [224, 224, 3]): IdentifiedArchitecture | undefined {
  return runSteps(identifyArchitectureSteps(shapes, inputShape));
}

/** `identifyArchitecture` in steps (lib/cooperative.ts): one step per candidate built and analyzed. */
export function* identifyArchitectureSteps(shapes: ReadonlyMap<string, readonly number[]>, inputShape: readonly number[] = [224, 224, 3]): Steps<IdentifiedArchitecture | undefined> {
  const names = new Set(shapes.keys());
  const size: [number, number, number] = [
    Math.max(32, inputShape[0] ?? 224), Math.max(32, inputShape[1] ?? 224), inputShape[2] ?? 3,
  ];
  for (const arch of candidates(names)) {
    const alphas = new Set<number>(KERAS_ALPHAS[arch]);
    const first = shapes.get(arch === 'v1' ? 'conv1/kernel' : arch === 'v2' ? 'Conv1/kernel' : 'expanded_conv/project/kernel');
    const firstFilters = first?.[first.length - 1];
    if (arch === 'v1' && firstFilters !== undefined) alphas.add(firstFilters / 32);
    const depthMultiplier = arch === 'v1' ? shapes.get('conv_dw_1/depthwise_kernel')?.[3] ?? 1 : undefined;
    const variants: Array<{ alpha: number; minimalistic?: boolean }> = [];
    for (const alpha of alphas) {
      if (arch === 'v3-small' || arch === 'v3-large') {
        variants.push({ alpha, minimalistic: !names.has('expanded_conv_3/squeeze_excite/Conv/kernel') });
      } else variants.push({ alpha });
    }
    for (const variant of variants) {
      let config: KerasModelConfig;
      try {
        config = buildArchitecture(arch, {
          ...variant, inputShape: size, includeTop: false, ...(depthMultiplier !== undefined ? { depthMultiplier } : {}),
        });
      } catch {
        continue;
      }
      yield;
      const analysis = analyzeModel(config);
      yield;
      const ok = analysis.layers.every((l) =>
        l.weights.every((w) => {
          const s = shapes.get(w.fullName);
          return s !== undefined && s.length === w.shape.length && s.every((d, i) => d === w.shape[i]);
        }),
      );
      if (!ok) continue;
      const top = shapes.get(TOP_WEIGHT[arch]);
      const result: IdentifiedArchitecture = { architecture: arch, alpha: variant.alpha, includeTop: top !== undefined };
      if (depthMultiplier !== undefined) result.depthMultiplier = depthMultiplier;
      if (variant.minimalistic !== undefined) result.minimalistic = variant.minimalistic;
      if (top !== undefined) result.classes = top[top.length - 1] as number;
      return result;
    }
  }
  return undefined;
}

/** How an identified architecture is named in messages: `MobileNet v1 alpha 0.25 without top`. */
export function describeIdentified(id: IdentifiedArchitecture): string {
  const parts = [`MobileNet ${id.architecture} alpha ${id.alpha}`];
  if (id.depthMultiplier !== undefined && id.depthMultiplier !== 1) parts.push(`depth multiplier ${id.depthMultiplier}`);
  if (id.minimalistic) parts.push('minimalistic');
  parts.push(id.includeTop ? `with its top (${id.classes ?? 1000} classes)` : 'without top');
  return parts.join(' ');
}

/** The loadModel options and the CLI flags that build an identified architecture. */
export function optionsFor(id: IdentifiedArchitecture): { api: string; cli: string } {
  const api = [`architecture: '${id.architecture}'`, `alpha: ${id.alpha}`];
  const cli = [`--arch ${id.architecture}`, `--alpha ${id.alpha}`];
  if (id.depthMultiplier !== undefined && id.depthMultiplier !== 1) {
    api.push(`depthMultiplier: ${id.depthMultiplier}`);
    cli.push(`--depth-multiplier ${id.depthMultiplier}`);
  }
  if (id.minimalistic) {
    api.push('minimalistic: true');
    cli.push('--minimalistic');
  }
  if (!id.includeTop) {
    api.push('includeTop: false');
    cli.push('--no-top');
  } else if (id.classes !== undefined && id.classes !== 1000) {
    api.push(`classes: ${id.classes}`);
    cli.push(`--classes ${id.classes}`);
  }
  return { api: `{ ${api.join(', ')} }`, cli: cli.join(' ') };
}

/**
 * What a set of weights looks like, for a WeightMismatchError (`matchWeights`'s
 * `identify`): "MobileNet v1 alpha 0.25 without top: pass { … } (CLI: --arch …)".
 */
export function describeWeights(shapes: ReadonlyMap<string, readonly number[]>, inputShape?: readonly number[]): string | undefined {
  const id = identifyArchitecture(shapes, inputShape);
  if (id === undefined) return undefined;
  const o = optionsFor(id);
  return `${describeIdentified(id)}: pass ${o.api} (CLI: ${o.cli})`;
}

/** `<layer>/<weight>` → shape for every weight of an analysis. */
export function weightShapes(analysis: ModelAnalysis): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const l of analysis.layers) for (const w of l.weights) m.set(w.fullName, w.shape);
  return m;
}
