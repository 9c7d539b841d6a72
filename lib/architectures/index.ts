/**
 * The four MobileNet families with Keras Applications semantics. Each
 * builder returns the Keras 2 functional config tf.keras would give for
 * that application (`lib/keras/types.ts`); `analyzeModel` gives shapes,
 * parameters and MACs, `randomWeights` seeded weights, the lowering turns
 * config + weights into a graph.
 */
import type { Architecture, KerasModelConfig, Preprocessing } from '../keras/types.js';
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
