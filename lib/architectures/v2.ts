/**
 * MobileNet V2 exactly as tf.keras 2.x `keras.applications.MobileNetV2`
 * defines it: `Conv1` (3x3/2 'same') → `bn_Conv1` → `Conv1_relu`, 17
 * inverted residual blocks (`expanded_conv_*` for block 0, `block_N_*`
 * after; `block_N_pad` = correct_pad before stride-2 depthwise), `Conv_1`
 * (1280, or more when alpha > 1) → `Conv_1_bn` → `out_relu`, head
 * GlobalAveragePooling2D → Dense `predictions`.
 */
import type { KerasModelConfig } from '../keras/types.js';
import { type CommonOptions, FunctionalBuilder, type Sym, alphaText, correctPad, makeDivisible, resolveCommon } from './common.js';

export type MobileNetV2Options = CommonOptions;

/** The inverted residual stages (t, c, n, s) of the paper's Table 2. */
export const V2_STAGES: ReadonlyArray<readonly [expansion: number, filters: number, repeats: number, stride: 1 | 2]> = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

const KNOWN = ['inputShape', 'alpha', 'includeTop', 'pooling', 'classes', 'classifierActivation'];

const MOMENTUM = 0.999;

function invertedResBlock(b: FunctionalBuilder, inputs: Sym, expansion: number, stride: 1 | 2, alpha: number, filters: number, blockId: number): Sym {
  const inChannels = inputs.shape[2] as number;
  const pointwiseFilters = makeDivisible(Math.trunc(filters * alpha), 8);
  let x = inputs;
  let prefix = `block_${blockId}_`;
  if (blockId) {
    x = b.conv2d(x, { filters: expansion * inChannels, kernel: 1, padding: 'same', useBias: false, name: `${prefix}expand` });
    x = b.batchNorm(x, `${prefix}expand_BN`, MOMENTUM);
    x = b.relu(x, 6.0, `${prefix}expand_relu`);
  } else {
    prefix = 'expanded_conv_';
  }
  if (stride === 2) x = b.zeroPad(x, correctPad(x.shape[0] as number, x.shape[1] as number, 3), `${prefix}pad`);
  x = b.depthwise(x, { kernel: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, name: `${prefix}depthwise` });
  x = b.batchNorm(x, `${prefix}depthwise_BN`, MOMENTUM);
  x = b.relu(x, 6.0, `${prefix}depthwise_relu`);
  x = b.conv2d(x, { filters: pointwiseFilters, kernel: 1, padding: 'same', useBias: false, name: `${prefix}project` });
  x = b.batchNorm(x, `${prefix}project_BN`, MOMENTUM);
  if (inChannels === pointwiseFilters && stride === 1) return b.addLayer([inputs, x], `${prefix}add`);
  return x;
}

export function mobilenetV2(options: MobileNetV2Options = {}): KerasModelConfig {
  const o = resolveCommon(options, KNOWN);
  const { alpha } = o;
  const b = new FunctionalBuilder();
  const input = b.input(o.inputShape);

  let x = b.conv2d(input, { filters: makeDivisible(32 * alpha, 8), kernel: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv1' });
  x = b.batchNorm(x, 'bn_Conv1', MOMENTUM);
  x = b.relu(x, 6.0, 'Conv1_relu');

  let blockId = 0;
  for (const [t, c, n, s] of V2_STAGES) {
    for (let i = 0; i < n; i++) {
      x = invertedResBlock(b, x, t, i === 0 ? s : 1, alpha, c, blockId);
      blockId++;
    }
  }

  const lastBlockFilters = alpha > 1.0 ? makeDivisible(1280 * alpha, 8) : 1280;
  x = b.conv2d(x, { filters: lastBlockFilters, kernel: 1, useBias: false, name: 'Conv_1' });
  x = b.batchNorm(x, 'Conv_1_bn', MOMENTUM);
  x = b.relu(x, 6.0, 'out_relu');

  if (o.includeTop) {
    x = b.globalAveragePool(x, false);
    x = b.dense(x, o.classes, o.classifierActivation, 'predictions');
  } else if (o.pooling === 'avg') {
    x = b.globalAveragePool(x, false);
  } else if (o.pooling === 'max') {
    x = b.globalMaxPool(x, false);
  }
  return b.model(`mobilenetv2_${alphaText(alpha)}_${o.inputShape[0]}`, input, x);
}
