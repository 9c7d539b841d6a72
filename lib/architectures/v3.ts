/**
 * MobileNet V3 Small and Large exactly as tf.keras 2.x
 * `keras.applications.MobileNetV3Small/Large` define them: optional
 * `Rescaling(1/127.5, -1)`, `Conv` → `Conv/BatchNorm` → activation, the
 * inverted residual blocks `expanded_conv[_N]/...` (expand, depthwise with
 * `depthwise/pad` = correct_pad on stride 2, squeeze-excite, project, `Add`),
 * `Conv_1` → `Conv_1/BatchNorm` → activation, head GlobalAveragePooling2D
 * (keepdims) → `Conv_2` (with bias) → activation → `dropout` → `Logits` →
 * `flatten` → `Predictions`.
 *
 * hard_sigmoid(x) = ReLU(6)(x + 3) * (1/6): in the functional config these
 * are TFOpLambda layers (`tf.__operators__.add`, `tf.math.multiply`) around
 * an unnamed ReLU, exactly as Keras records them; hard_swish(x) =
 * Multiply()([x, hard_sigmoid(x)]).
 */
import type { KerasModelConfig } from '../keras/types.js';
import { type CommonOptions, FunctionalBuilder, type Sym, correctPad, dropoutRate, makeDivisible, optionalBoolean, resolveCommon } from './common.js';

export interface MobileNetV3Options extends CommonOptions {
  /** No squeeze-excite, no hard-swish, 3x3 kernels only. Default false. */
  minimalistic?: boolean;
  /** Dropout before `Logits`. Default 0.2. */
  dropoutRate?: number;
  /** Put `Rescaling(1/127.5, offset -1)` in the model (input 0..255). Default true. */
  includePreprocessing?: boolean;
}

/**
 * One row per block: [expansion, filters at alpha 1, kernel ('k' = 5, or 3
 * when minimalistic), stride, squeeze-excite, activation ('relu' or 'act' =
 * hard-swish, or relu when minimalistic)].
 */
type Row = readonly [expansion: number, filters: number, kernel: 3 | 'k', stride: 1 | 2, se: boolean, activation: 'relu' | 'act'];

export const V3_SMALL: readonly Row[] = [
  [1, 16, 3, 2, true, 'relu'],
  [72 / 16, 24, 3, 2, false, 'relu'],
  [88 / 24, 24, 3, 1, false, 'relu'],
  [4, 40, 'k', 2, true, 'act'],
  [6, 40, 'k', 1, true, 'act'],
  [6, 40, 'k', 1, true, 'act'],
  [3, 48, 'k', 1, true, 'act'],
  [3, 48, 'k', 1, true, 'act'],
  [6, 96, 'k', 2, true, 'act'],
  [6, 96, 'k', 1, true, 'act'],
  [6, 96, 'k', 1, true, 'act'],
];

export const V3_LARGE: readonly Row[] = [
  [1, 16, 3, 1, false, 'relu'],
  [4, 24, 3, 2, false, 'relu'],
  [3, 24, 3, 1, false, 'relu'],
  [3, 40, 'k', 2, true, 'relu'],
  [3, 40, 'k', 1, true, 'relu'],
  [3, 40, 'k', 1, true, 'relu'],
  [6, 80, 3, 2, false, 'act'],
  [2.5, 80, 3, 1, false, 'act'],
  [2.3, 80, 3, 1, false, 'act'],
  [2.3, 80, 3, 1, false, 'act'],
  [6, 112, 3, 1, true, 'act'],
  [6, 112, 3, 1, true, 'act'],
  [6, 160, 'k', 2, true, 'act'],
  [6, 160, 'k', 1, true, 'act'],
  [6, 160, 'k', 1, true, 'act'],
];

const KNOWN = ['inputShape', 'alpha', 'minimalistic', 'includeTop', 'pooling', 'classes', 'dropoutRate', 'classifierActivation', 'includePreprocessing'];
const MOMENTUM = 0.999;

type Act = (b: FunctionalBuilder, x: Sym) => Sym;

const relu: Act = (b, x) => b.relu(x);

function hardSigmoid(b: FunctionalBuilder, x: Sym): Sym {
  const plus3 = b.tfOp(x, '__operators__.add', 3.0);
  const r = b.relu(plus3, 6.0);
  return b.tfOp(r, 'math.multiply', 1.0 / 6.0);
}

const hardSwish: Act = (b, x) => b.multiply([x, hardSigmoid(b, x)]);

function seBlock(b: FunctionalBuilder, inputs: Sym, filters: number, seRatio: number, prefix: string): Sym {
  let x = b.globalAveragePool(inputs, true, `${prefix}squeeze_excite/AvgPool`);
  x = b.conv2d(x, { filters: makeDivisible(filters * seRatio), kernel: 1, padding: 'same', name: `${prefix}squeeze_excite/Conv` });
  x = b.relu(x, null, `${prefix}squeeze_excite/Relu`);
  x = b.conv2d(x, { filters, kernel: 1, padding: 'same', name: `${prefix}squeeze_excite/Conv_1` });
  x = hardSigmoid(b, x);
  return b.multiply([inputs, x], `${prefix}squeeze_excite/Mul`);
}

function invertedResBlock(
  b: FunctionalBuilder, x: Sym, expansion: number, filters: number, kernel: number, stride: 1 | 2,
  seRatio: number | null, activation: Act, blockId: number,
): Sym {
  const shortcut = x;
  let prefix = 'expanded_conv/';
  const infilters = x.shape[2] as number;
  if (blockId) {
    prefix = `expanded_conv_${blockId}/`;
    x = b.conv2d(x, { filters: makeDivisible(infilters * expansion), kernel: 1, padding: 'same', useBias: false, name: `${prefix}expand` });
    x = b.batchNorm(x, `${prefix}expand/BatchNorm`, MOMENTUM);
    x = activation(b, x);
  }
  if (stride === 2) x = b.zeroPad(x, correctPad(x.shape[0] as number, x.shape[1] as number, kernel), `${prefix}depthwise/pad`);
  x = b.depthwise(x, { kernel, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, name: `${prefix}depthwise` });
  x = b.batchNorm(x, `${prefix}depthwise/BatchNorm`, MOMENTUM);
  x = activation(b, x);
  if (seRatio) x = seBlock(b, x, makeDivisible(infilters * expansion), seRatio, prefix);
  x = b.conv2d(x, { filters, kernel: 1, padding: 'same', useBias: false, name: `${prefix}project` });
  x = b.batchNorm(x, `${prefix}project/BatchNorm`, MOMENTUM);
  if (stride === 1 && infilters === filters) x = b.addLayer([shortcut, x], `${prefix}Add`);
  return x;
}

function mobilenetV3(rows: readonly Row[], lastPointCh: number, modelType: 'small' | 'large', options: MobileNetV3Options): KerasModelConfig {
  const o = resolveCommon(options, KNOWN);
  const minimalistic = optionalBoolean(o.raw.minimalistic, 'minimalistic', false);
  const includePreprocessing = optionalBoolean(o.raw.includePreprocessing, 'includePreprocessing', true);
  const dropout = dropoutRate(o.raw.dropoutRate, 'dropoutRate', 0.2);
  const { alpha } = o;
  const kernel = minimalistic ? 3 : 5;
  const activation: Act = minimalistic ? relu : hardSwish;
  const seRatio = minimalistic ? null : 0.25;

  const b = new FunctionalBuilder();
  const input = b.input(o.inputShape);
  let x = input;
  if (includePreprocessing) x = b.rescaling(x, 1.0 / 127.5, -1.0);
  x = b.conv2d(x, { filters: 16, kernel: 3, strides: 2, padding: 'same', useBias: false, name: 'Conv' });
  x = b.batchNorm(x, 'Conv/BatchNorm', MOMENTUM);
  x = activation(b, x);

  rows.forEach(([expansion, filters, k, stride, se, act], blockId) => {
    x = invertedResBlock(
      b, x, expansion, makeDivisible(filters * alpha), k === 'k' ? kernel : k, stride,
      se ? seRatio : null, act === 'relu' ? relu : activation, blockId,
    );
  });

  const lastConvCh = makeDivisible((x.shape[2] as number) * 6);
  const lastPoint = alpha > 1.0 ? makeDivisible(lastPointCh * alpha) : lastPointCh;
  x = b.conv2d(x, { filters: lastConvCh, kernel: 1, padding: 'same', useBias: false, name: 'Conv_1' });
  x = b.batchNorm(x, 'Conv_1/BatchNorm', MOMENTUM);
  x = activation(b, x);
  if (o.includeTop) {
    x = b.globalAveragePool(x, true);
    x = b.conv2d(x, { filters: lastPoint, kernel: 1, padding: 'same', useBias: true, name: 'Conv_2' });
    x = activation(b, x);
    if (dropout > 0) x = b.dropout(x, dropout);
    x = b.conv2d(x, { filters: o.classes, kernel: 1, padding: 'same', name: 'Logits' });
    x = b.flatten(x);
    x = b.activation(x, o.classifierActivation, 'Predictions');
  } else if (o.pooling === 'avg') {
    x = b.globalAveragePool(x, false, 'avg_pool');
  } else if (o.pooling === 'max') {
    x = b.globalMaxPool(x, false, 'max_pool');
  }
  return b.model(`MobilenetV3${modelType}`, input, x);
}

export function mobilenetV3Small(options: MobileNetV3Options = {}): KerasModelConfig {
  return mobilenetV3(V3_SMALL, 1024, 'small', options);
}

export function mobilenetV3Large(options: MobileNetV3Options = {}): KerasModelConfig {
  return mobilenetV3(V3_LARGE, 1280, 'large', options);
}
