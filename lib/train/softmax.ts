/**
 * A softmax classifier (one Dense layer with softmax) fitted on fixed feature
 * vectors: mean cross-entropy plus an L2 penalty `l2 · ||W||²` on the kernel
 * (Keras's `kernel_regularizer=l2(l2)`; the bias is not penalised), minimised
 * with Adam (Kingma & Ba, default β1 0.9, β2 0.999, ε 1e-7 as Keras) on
 * mini-batches, with optional inverted dropout on the inputs, early stopping
 * on the validation loss (the best epoch's weights are kept) and a seeded
 * generator for the shuffles and dropout masks: the same inputs and seed give
 * bit-identical weights.
 *
 * Written here rather than taken from npm: the optimisers on the registry
 * (`ml-logistic-regression`: one-vs-rest with fixed-step gradient descent, no
 * softmax, no regularisation; `fmin`: Nelder-Mead / conjugate gradient, a
 * plotting library as dependency; `optimization-js`: browserify and travis as
 * runtime dependencies) do not fit, and the whole problem is ~100 lines.
 */
import { mulberry32 } from '../keras/random.js';
import * as v from '../validate.js';

export interface SoftmaxData {
  /** n × d features, row-major. */
  x: Float32Array;
  /** n class indices in [0, k). */
  y: Int32Array;
}

export interface SoftmaxOptions {
  /** Maximum passes over the training set (default 200). */
  epochs?: number;
  /** Mini-batch size (default 32). */
  batchSize?: number;
  /** Adam step size (default 0.001). */
  learningRate?: number;
  /** L2 penalty on the kernel (default 1e-4). */
  l2?: number;
  /** Inverted dropout on the inputs while fitting, 0 ≤ rate < 1 (default 0). */
  dropout?: number;
  /** Epochs without a lower validation loss before stopping (default 10). */
  patience?: number;
  /** Seed of the shuffles and dropout masks (default 1). */
  seed?: number;
  /** Called after each epoch. */
  onEpoch?: (e: EpochStats) => void;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
}

export interface SoftmaxHead {
  /** d × k kernel, row-major (Keras Dense kernel layout [in, out]). */
  kernel: Float32Array;
  bias: Float32Array;
  inputs: number;
  classes: number;
  /** Epochs run, and the (1-based) epoch whose weights were kept. */
  epochs: number;
  bestEpoch: number;
  history: EpochStats[];
}

/** Softmax probabilities of the head for n samples (n × k). */
export function predictSoftmax(head: Pick<SoftmaxHead, 'kernel' | 'bias' | 'inputs' | 'classes'>, x: Float32Array): Float32Array {
  const { inputs: d, classes: k } = head;
  const n = x.length / d;
  const out = new Float32Array(n * k);
  const z = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    logits(head.kernel, head.bias, x, i, d, k, z);
    softmaxInPlace(z);
    for (let c = 0; c < k; c++) out[i * k + c] = z[c]!;
  }
  return out;
}

function logits(w: ArrayLike<number>, b: ArrayLike<number>, x: Float32Array, i: number, d: number, k: number, z: Float64Array, mask?: Float64Array): void {
  for (let c = 0; c < k; c++) z[c] = b[c]!;
  const o = i * d;
  for (let j = 0; j < d; j++) {
    let xj = x[o + j]!;
    if (mask !== undefined) xj *= mask[j]!;
    if (xj === 0) continue;
    const r = j * k;
    for (let c = 0; c < k; c++) z[c] += xj * w[r + c]!;
  }
}

function softmaxInPlace(z: Float64Array): void {
  let m = -Infinity;
  for (let c = 0; c < z.length; c++) m = Math.max(m, z[c]!);
  let s = 0;
  for (let c = 0; c < z.length; c++) {
    z[c] = Math.exp(z[c]! - m);
    s += z[c]!;
  }
  for (let c = 0; c < z.length; c++) z[c]! /= s;
}

/** Mean cross-entropy (without the penalty) and accuracy of float64 parameters on a data set. */
function evaluate(w: Float64Array, b: Float64Array, data: SoftmaxData, d: number, k: number): { loss: number; accuracy: number } {
  const n = data.y.length;
  const z = new Float64Array(k);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    logits(w, b, data.x, i, d, k, z);
    softmaxInPlace(z);
    const t = data.y[i]!;
    loss -= Math.log(Math.max(z[t]!, 1e-300));
    let best = 0;
    for (let c = 1; c < k; c++) if (z[c]! > z[best]!) best = c;
    if (best === t) correct++;
  }
  return { loss: n > 0 ? loss / n : 0, accuracy: n > 0 ? correct / n : 0 };
}

/**
 * The objective (mean cross-entropy + l2 · ||W||²) and its gradient at
 * (w, b) over all samples: exposed for the gradient check in the tests.
 */
export function objective(w: Float64Array, b: Float64Array, data: SoftmaxData, d: number, k: number, l2: number): { loss: number; gw: Float64Array; gb: Float64Array } {
  const n = data.y.length;
  const gw = new Float64Array(d * k);
  const gb = new Float64Array(k);
  const z = new Float64Array(k);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    logits(w, b, data.x, i, d, k, z);
    softmaxInPlace(z);
    const t = data.y[i]!;
    loss -= Math.log(Math.max(z[t]!, 1e-300));
    z[t]! -= 1;
    accumulate(gw, gb, data.x, i, d, k, z, 1 / n);
  }
  let reg = 0;
  for (let j = 0; j < w.length; j++) {
    reg += w[j]! * w[j]!;
    gw[j]! += 2 * l2 * w[j]!;
  }
  return { loss: loss / n + l2 * reg, gw, gb };
}

function accumulate(gw: Float64Array, gb: Float64Array, x: Float32Array, i: number, d: number, k: number, g: Float64Array, scale: number, mask?: Float64Array): void {
  const o = i * d;
  for (let c = 0; c < k; c++) gb[c]! += g[c]! * scale;
  for (let j = 0; j < d; j++) {
    let xj = x[o + j]!;
    if (mask !== undefined) xj *= mask[j]!;
    if (xj === 0) continue;
    const r = j * k;
    const s = xj * scale;
    for (let c = 0; c < k; c++) gw[r + c]! += s * g[c]!;
  }
}

function checkData(data: SoftmaxData, name: string, d: number, k: number): void {
  if (!(data?.x instanceof Float32Array)) throw v.typeError('Float32Array', `${name}.x`, data?.x);
  if (!(data.y instanceof Int32Array)) throw v.typeError('Int32Array', `${name}.y`, data.y);
  if (data.x.length !== data.y.length * d) throw v.rangeError(`${data.y.length * d} values (${data.y.length} × ${d})`, `${name}.x`, data.x);
  for (const t of data.y) if (!(t >= 0 && t < k)) throw v.rangeError(`class indices in [0, ${k})`, `${name}.y`, t);
}

/** Fits the head on `train`, early-stopping on `validation` when given (non-empty). */
export function fitSoftmax(train: SoftmaxData, validation: SoftmaxData | undefined, inputs: number, classes: number, options: SoftmaxOptions = {}): SoftmaxHead {
  const d = v.positiveInteger(inputs, 'inputs');
  const k = v.positiveInteger(classes, 'classes');
  checkData(train, 'train', d, k);
  if (train.y.length === 0) throw v.rangeError('at least one training sample', 'train', train.y.length);
  const val = validation !== undefined && validation.y.length > 0 ? validation : undefined;
  if (val !== undefined) checkData(val, 'validation', d, k);
  const epochs = options.epochs === undefined ? 200 : v.positiveInteger(options.epochs, 'epochs');
  const batchSize = options.batchSize === undefined ? 32 : v.positiveInteger(options.batchSize, 'batchSize');
  const lr = options.learningRate === undefined ? 1e-3 : v.finiteNumber(options.learningRate, 'learningRate');
  if (!(lr > 0)) throw v.rangeError('positive number', 'learningRate', lr);
  const l2 = options.l2 === undefined ? 1e-4 : v.finiteNumber(options.l2, 'l2');
  if (l2 < 0) throw v.rangeError('non-negative number', 'l2', l2);
  const dropout = options.dropout === undefined ? 0 : v.finiteNumber(options.dropout, 'dropout');
  if (dropout < 0 || dropout >= 1) throw v.rangeError('number in [0, 1)', 'dropout', dropout);
  const patience = options.patience === undefined ? 10 : v.positiveInteger(options.patience, 'patience');
  const rand = mulberry32(options.seed === undefined ? 1 : v.nonNegativeInteger(options.seed, 'seed'));

  const n = train.y.length;
  const w = new Float64Array(d * k);
  const b = new Float64Array(k);
  const mw = new Float64Array(d * k);
  const vw = new Float64Array(d * k);
  const mb = new Float64Array(k);
  const vb = new Float64Array(k);
  const gw = new Float64Array(d * k);
  const gb = new Float64Array(k);
  const z = new Float64Array(k);
  const mask = dropout > 0 ? new Float64Array(d) : undefined;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const beta1 = 0.9;
  const beta2 = 0.999;
  const eps = 1e-7;
  let step = 0;
  let best = { loss: Infinity, w: new Float64Array(w), b: new Float64Array(b), epoch: 0 };
  const history: EpochStats[] = [];
  let sinceBest = 0;
  let epoch = 0;
  while (epoch < epochs) {
    epoch++;
    // Fisher-Yates with the seeded generator.
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    for (let start = 0; start < n; start += batchSize) {
      const end = Math.min(n, start + batchSize);
      gw.fill(0);
      gb.fill(0);
      const scale = 1 / (end - start);
      for (let p = start; p < end; p++) {
        const i = order[p]!;
        if (mask !== undefined) for (let j = 0; j < d; j++) mask[j] = rand() < dropout ? 0 : 1 / (1 - dropout);
        logits(w, b, train.x, i, d, k, z, mask);
        softmaxInPlace(z);
        z[train.y[i]!]! -= 1;
        accumulate(gw, gb, train.x, i, d, k, z, scale, mask);
      }
      for (let j = 0; j < w.length; j++) gw[j]! += 2 * l2 * w[j]!;
      step++;
      const c1 = 1 - beta1 ** step;
      const c2 = 1 - beta2 ** step;
      for (let j = 0; j < w.length; j++) {
        const g = gw[j]!;
        mw[j] = beta1 * mw[j]! + (1 - beta1) * g;
        vw[j] = beta2 * vw[j]! + (1 - beta2) * g * g;
        w[j]! -= (lr * (mw[j]! / c1)) / (Math.sqrt(vw[j]! / c2) + eps);
      }
      for (let c = 0; c < k; c++) {
        const g = gb[c]!;
        mb[c] = beta1 * mb[c]! + (1 - beta1) * g;
        vb[c] = beta2 * vb[c]! + (1 - beta2) * g * g;
        b[c]! -= (lr * (mb[c]! / c1)) / (Math.sqrt(vb[c]! / c2) + eps);
      }
    }
    const tr = evaluate(w, b, train, d, k);
    const stats: EpochStats = { epoch, loss: tr.loss, accuracy: tr.accuracy };
    let monitored = tr.loss;
    if (val !== undefined) {
      const ve = evaluate(w, b, val, d, k);
      stats.valLoss = ve.loss;
      stats.valAccuracy = ve.accuracy;
      monitored = ve.loss;
    }
    history.push(stats);
    options.onEpoch?.(stats);
    if (monitored < best.loss - 1e-6) {
      best = { loss: monitored, w: new Float64Array(w), b: new Float64Array(b), epoch };
      sinceBest = 0;
    } else if (val !== undefined && ++sinceBest >= patience) {
      break;
    }
  }
  if (val === undefined) best = { loss: 0, w, b, epoch };
  return { kernel: Float32Array.from(best.w), bias: Float32Array.from(best.b), inputs: d, classes: k, epochs: epoch, bestEpoch: best.epoch, history };
}
