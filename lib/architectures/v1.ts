/**
 * MobileNet V1 exactly as tf.keras 2.x `keras.applications.MobileNet`
 * defines it: `conv1` (3x3/2, 'same'), thirteen depthwise-separable blocks
 * (`conv_pad_N` ZeroPadding2D ((0,1),(0,1)) + 'valid' depthwise on stride 2),
 * head GlobalAveragePooling2D(keepdims) → `dropout` → `conv_preds` (1x1
 * conv with bias) → `reshape_2` → `predictions`.
 */
import type { KerasModelConfig } from '../keras/types.js';
import * as v from '../validate.js';
import { type CommonOptions, FunctionalBuilder, alphaText, dropoutRate, resolveCommon } from './common.js';

export interface MobileNetV1Options extends CommonOptions {
  /** Depth multiplier of the depthwise convolutions (the paper's resolution multiplier is the input size). Default 1. */
  depthMultiplier?: number;
  /** Dropout rate before `conv_preds`. Default 0.001. */
  dropout?: number;
}

/** The 13 depthwise-separable blocks: [stride, pointwise filters at alpha 1]. */
export const V1_BLOCKS: ReadonlyArray<readonly [stride: 1 | 2, filters: number]> = [
  [1, 64], [2, 128], [1, 128], [2, 256], [1, 256], [2, 512],
  [1, 512], [1, 512], [1, 512], [1, 512], [1, 512], [2, 1024], [1, 1024],
];

const KNOWN = ['inputShape', 'alpha', 'depthMultiplier', 'dropout', 'includeTop', 'pooling', 'classes', 'classifierActivation'];

export function mobilenetV1(options: MobileNetV1Options = {}): KerasModelConfig {
  const o = resolveCommon(options, KNOWN);
  const depthMultiplier = o.raw.depthMultiplier === undefined ? 1 : v.positiveInteger(o.raw.depthMultiplier, 'depthMultiplier');
  const dropout = dropoutRate(o.raw.dropout, 'dropout', 1e-3);
  const { alpha } = o;
  const b = new FunctionalBuilder();
  const input = b.input(o.inputShape);

  // _conv_block
  let x = b.conv2d(input, { filters: Math.trunc(32 * alpha), kernel: 3, strides: 2, padding: 'same', useBias: false, name: 'conv1' });
  x = b.batchNorm(x, 'conv1_bn');
  x = b.relu(x, 6.0, 'conv1_relu');

  // _depthwise_conv_block × 13
  V1_BLOCKS.forEach(([stride, filters], i) => {
    const id = i + 1;
    if (stride === 2) x = b.zeroPad(x, [[0, 1], [0, 1]], `conv_pad_${id}`);
    x = b.depthwise(x, { kernel: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', depthMultiplier, useBias: false, name: `conv_dw_${id}` });
    x = b.batchNorm(x, `conv_dw_${id}_bn`);
    x = b.relu(x, 6.0, `conv_dw_${id}_relu`);
    x = b.conv2d(x, { filters: Math.trunc(filters * alpha), kernel: 1, padding: 'same', useBias: false, name: `conv_pw_${id}` });
    x = b.batchNorm(x, `conv_pw_${id}_bn`);
    x = b.relu(x, 6.0, `conv_pw_${id}_relu`);
  });

  if (o.includeTop) {
    x = b.globalAveragePool(x, true);
    x = b.dropout(x, dropout, 'dropout');
    x = b.conv2d(x, { filters: o.classes, kernel: 1, padding: 'same', name: 'conv_preds' });
    x = b.reshape(x, [o.classes], 'reshape_2');
    x = b.activation(x, o.classifierActivation, 'predictions');
  } else if (o.pooling === 'avg') {
    x = b.globalAveragePool(x, false);
  } else if (o.pooling === 'max') {
    x = b.globalMaxPool(x, false);
  }
  return b.model(`mobilenet_${alphaText(alpha)}_${o.inputShape[0]}`, input, x);
}
