/**
 * Shared pieces of the MobileNet builders: a small functional-model recorder
 * that writes layers exactly as tf.keras 2.x `model.get_config()` does (layer
 * classes, names — including Keras's automatic names such as `re_lu_3` or
 * `tf.__operators__.add_2` —, configs, inbound nodes), Keras's
 * `_make_divisible` and `correct_pad`, and option validation.
 */
import { inferLayer } from '../keras/layers.js';
import type { KerasLayerConfig, KerasModelConfig } from '../keras/types.js';
import * as v from '../validate.js';

/** A symbolic tensor while building: the producing layer and its per-sample shape. */
export interface Sym {
  readonly layer: string;
  readonly shape: readonly number[];
}

/** Keras `_make_divisible` / V3 `_depth`. */
export function makeDivisible(value: number, divisor = 8, minValue?: number): number {
  const min = minValue ?? divisor;
  let n = Math.max(min, Math.floor(Math.trunc(value + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * value) n += divisor;
  return n;
}

/** Keras `imagenet_utils.correct_pad` for an input of size [h, w]: [[top, bottom], [left, right]]. */
export function correctPad(h: number, w: number, kernel: number): [[number, number], [number, number]] {
  const adjust = [1 - (h % 2), 1 - (w % 2)] as const;
  const c = Math.floor(kernel / 2);
  return [
    [c - adjust[0], c],
    [c - adjust[1], c],
  ];
}

const glorotUniform = { class_name: 'GlorotUniform', config: { seed: null } };
const zeros = { class_name: 'Zeros', config: {} };
const ones = { class_name: 'Ones', config: {} };

type Kw = Record<string, unknown>;

export interface ConvArgs {
  filters: number;
  kernel: number;
  strides?: number;
  padding?: 'same' | 'valid';
  useBias?: boolean;
  activation?: string;
  name?: string;
}

/**
 * Records a Keras 2 functional model. Every method adds one layer, checks it
 * with the same shape inference `analyzeModel` uses, and returns its output.
 */
export class FunctionalBuilder {
  private readonly layers: KerasLayerConfig[] = [];
  private readonly names = new Set<string>();
  private readonly counters = new Map<string, number>();

  /** Keras `backend.unique_object_name`: base, base_1, base_2, … */
  private autoName(base: string): string {
    for (;;) {
      const n = this.counters.get(base) ?? 0;
      this.counters.set(base, n + 1);
      const candidate = n === 0 ? base : `${base}_${n}`;
      if (!this.names.has(candidate)) return candidate;
    }
  }

  private add(className: string, base: string, name: string | undefined, config: Kw, inputs: Sym[], kwargs: Kw = {}, unwrapped = false): Sym {
    const layerName = name ?? this.autoName(base);
    if (this.names.has(layerName)) throw new Error(`internal: duplicate layer name ${layerName}`);
    const cfg = { name: layerName, trainable: true, dtype: 'float32', ...config };
    const inf = inferLayer(className, cfg, inputs.map((i) => i.shape), kwargs);
    const refs = inputs.map((i) => [i.layer, 0, 0, kwargs] as [string, number, number, Kw]);
    const inbound_nodes = (unwrapped ? refs : inputs.length === 0 ? [] : [refs]) as KerasLayerConfig['inbound_nodes'];
    this.layers.push({ class_name: className, config: cfg, name: layerName, inbound_nodes });
    this.names.add(layerName);
    return { layer: layerName, shape: inf.outputShape };
  }

  input(shape: readonly number[], name?: string): Sym {
    return this.add('InputLayer', 'input', name ?? this.autoNameInput(), { batch_input_shape: [null, ...shape], sparse: false, ragged: false }, []);
  }

  /** Keras names the first Input `input_1` (one-based). */
  private autoNameInput(): string {
    const n = (this.counters.get('input') ?? 0) + 1;
    this.counters.set('input', n);
    return `input_${n}`;
  }

  conv2d(x: Sym, a: ConvArgs): Sym {
    return this.add('Conv2D', 'conv2d', a.name, {
      filters: a.filters,
      kernel_size: [a.kernel, a.kernel],
      strides: [a.strides ?? 1, a.strides ?? 1],
      padding: a.padding ?? 'valid',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      groups: 1,
      activation: a.activation ?? 'linear',
      use_bias: a.useBias ?? true,
      kernel_initializer: glorotUniform,
      bias_initializer: zeros,
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    }, [x]);
  }

  depthwise(x: Sym, a: { kernel: number; strides?: number; padding?: 'same' | 'valid'; depthMultiplier?: number; useBias?: boolean; name?: string }): Sym {
    return this.add('DepthwiseConv2D', 'depthwise_conv2d', a.name, {
      kernel_size: [a.kernel, a.kernel],
      strides: [a.strides ?? 1, a.strides ?? 1],
      padding: a.padding ?? 'valid',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      groups: 1,
      activation: 'linear',
      use_bias: a.useBias ?? true,
      bias_initializer: zeros,
      bias_regularizer: null,
      activity_regularizer: null,
      bias_constraint: null,
      depth_multiplier: a.depthMultiplier ?? 1,
      depthwise_initializer: glorotUniform,
      depthwise_regularizer: null,
      depthwise_constraint: null,
    }, [x]);
  }

  batchNorm(x: Sym, name: string, momentum = 0.99, epsilon = 1e-3): Sym {
    return this.add('BatchNormalization', 'batch_normalization', name, {
      axis: [x.shape.length],
      momentum,
      epsilon,
      center: true,
      scale: true,
      beta_initializer: zeros,
      gamma_initializer: ones,
      moving_mean_initializer: zeros,
      moving_variance_initializer: ones,
      beta_regularizer: null,
      gamma_regularizer: null,
      beta_constraint: null,
      gamma_constraint: null,
    }, [x]);
  }

  relu(x: Sym, maxValue: number | null = null, name?: string): Sym {
    return this.add('ReLU', 're_lu', name, { max_value: maxValue, negative_slope: 0.0, threshold: 0.0 }, [x]);
  }

  zeroPad(x: Sym, padding: [[number, number], [number, number]], name: string): Sym {
    return this.add('ZeroPadding2D', 'zero_padding2d', name, { padding, data_format: 'channels_last' }, [x]);
  }

  addLayer(inputs: Sym[], name?: string): Sym {
    return this.add('Add', 'add', name, {}, inputs);
  }

  multiply(inputs: Sym[], name?: string): Sym {
    return this.add('Multiply', 'multiply', name, {}, inputs);
  }

  globalAveragePool(x: Sym, keepdims: boolean, name?: string): Sym {
    return this.add('GlobalAveragePooling2D', 'global_average_pooling2d', name, { data_format: 'channels_last', keepdims }, [x]);
  }

  globalMaxPool(x: Sym, keepdims: boolean, name?: string): Sym {
    return this.add('GlobalMaxPooling2D', 'global_max_pooling2d', name, { data_format: 'channels_last', keepdims }, [x]);
  }

  dropout(x: Sym, rate: number, name?: string): Sym {
    return this.add('Dropout', 'dropout', name, { rate, noise_shape: null, seed: null }, [x]);
  }

  reshape(x: Sym, targetShape: number[], name?: string): Sym {
    return this.add('Reshape', 'reshape', name, { target_shape: targetShape }, [x]);
  }

  flatten(x: Sym, name?: string): Sym {
    return this.add('Flatten', 'flatten', name, { data_format: 'channels_last' }, [x]);
  }

  activation(x: Sym, activation: string, name?: string): Sym {
    return this.add('Activation', 'activation', name, { activation }, [x]);
  }

  dense(x: Sym, units: number, activation: string, name?: string): Sym {
    return this.add('Dense', 'dense', name, {
      units,
      activation,
      use_bias: true,
      kernel_initializer: glorotUniform,
      bias_initializer: zeros,
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    }, [x]);
  }

  rescaling(x: Sym, scale: number, offset: number, name?: string): Sym {
    return this.add('Rescaling', 'rescaling', name, { scale, offset }, [x]);
  }

  /** `x + y` / `x * y` on a Keras tensor and a Python scalar: a TFOpLambda layer. */
  tfOp(x: Sym, fn: '__operators__.add' | 'math.multiply', y: number): Sym {
    return this.add('TFOpLambda', `tf.${fn}`, undefined, { function: fn }, [x], { y, name: null }, true);
  }

  model(name: string, input: Sym, output: Sym): KerasModelConfig {
    return {
      class_name: 'Functional',
      config: {
        name,
        layers: this.layers,
        input_layers: [[input.layer, 0, 0]],
        output_layers: [[output.layer, 0, 0]],
      },
    };
  }
}

/** Common builder options (Keras argument names in camelCase). */
export interface CommonOptions {
  /** [H, W, C] per sample; default [224, 224, 3]. */
  inputShape?: readonly number[];
  alpha?: number;
  /** Default true. */
  includeTop?: boolean;
  /** Only when includeTop is false: undefined/null (4-D feature map), 'avg' or 'max'. */
  pooling?: 'avg' | 'max' | null;
  /** Default 1000. */
  classes?: number;
  /** Default 'softmax'; null or 'linear' for logits. */
  classifierActivation?: string | null;
}

export const CLASSIFIER_ACTIVATIONS = ['softmax', 'linear', 'sigmoid', 'relu', 'relu6', 'hard_sigmoid', 'swish'] as const;

export interface ResolvedCommon {
  inputShape: [number, number, number];
  alpha: number;
  includeTop: boolean;
  pooling: 'avg' | 'max' | null;
  classes: number;
  classifierActivation: string;
}

function bool(value: unknown, name: string, dflt: boolean): boolean {
  if (value === undefined) return dflt;
  if (typeof value !== 'boolean') throw v.typeError('boolean', name, value);
  return value;
}

export { bool as optionalBoolean };

/** Validates the options every MobileNet shares (Keras rules without pretrained weights). */
export function resolveCommon(options: unknown, known: readonly string[]): ResolvedCommon & { raw: Record<string, unknown> } {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw v.typeError('object', 'options', options);
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (o[key] !== undefined && !known.includes(key)) {
      throw new RangeError(`Expected one of ${known.join(', ')} for option name but received ${JSON.stringify(key)}`);
    }
  }
  let inputShape: [number, number, number] = [224, 224, 3];
  if (o.inputShape !== undefined && o.inputShape !== null) {
    const s = o.inputShape;
    if (!Array.isArray(s)) throw v.typeError('array of 3 positive integers [height, width, channels]', 'inputShape', s);
    if (s.length !== 3) throw v.rangeError('`input_shape` as a tuple of three integers [height, width, channels]', 'inputShape', s);
    for (const d of s) {
      if (typeof d !== 'number') throw v.typeError('array of 3 positive integers [height, width, channels]', 'inputShape', s);
      if (!Number.isInteger(d) || d <= 0) throw v.rangeError('array of 3 positive integers [height, width, channels]', 'inputShape', s);
    }
    if ((s[0] as number) < 32 || (s[1] as number) < 32) throw v.rangeError('input size of at least 32x32', 'inputShape', s);
    inputShape = [s[0] as number, s[1] as number, s[2] as number];
  }
  let alpha = 1.0;
  if (o.alpha !== undefined) {
    if (typeof o.alpha !== 'number') throw v.typeError('positive number', 'alpha', o.alpha);
    if (!Number.isFinite(o.alpha) || o.alpha <= 0) throw v.rangeError('positive number', 'alpha', o.alpha);
    alpha = o.alpha;
  }
  const includeTop = bool(o.includeTop, 'includeTop', true);
  let pooling: 'avg' | 'max' | null = null;
  if (o.pooling !== undefined && o.pooling !== null) pooling = v.oneOf(o.pooling, 'pooling', ['avg', 'max'] as const);
  const classes = o.classes === undefined ? 1000 : v.positiveInteger(o.classes, 'classes');
  let classifierActivation = 'softmax';
  if (o.classifierActivation === null) classifierActivation = 'linear';
  else if (o.classifierActivation !== undefined) classifierActivation = v.oneOf(o.classifierActivation, 'classifierActivation', CLASSIFIER_ACTIVATIONS);
  return { inputShape, alpha, includeTop, pooling, classes, classifierActivation, raw: o };
}

/** A dropout rate in [0, 1). */
export function dropoutRate(value: unknown, name: string, dflt: number): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number') throw v.typeError('number in [0, 1)', name, value);
  if (!(value >= 0 && value < 1)) throw v.rangeError('number in [0, 1)', name, value);
  return value;
}

/** Python's `f"{alpha:0.2f}"`. */
export function alphaText(alpha: number): string {
  return alpha.toFixed(2);
}
