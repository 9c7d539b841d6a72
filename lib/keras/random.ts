/**
 * Seeded random weights for any analyzed model (benchmarks, tests).
 *
 * Every tensor gets its own stream, derived from the seed and the tensor's
 * full name, so a weight does not depend on the other layers. Scales keep
 * activations O(1) through deep networks: kernels feeding a BatchNorm are
 * uniform with variance gain / fan_in (gain 2 = He, 0.5 before a residual
 * add), other kernels (classifier, squeeze-excite, Dense) Glorot-uniform; BatchNorm gamma in [0.9, 1.1], beta and moving_mean
 * in [-0.1, 0.1], moving_variance in [0.5, 1.5]; biases in [-0.05, 0.05].
 */
import * as v from '../validate.js';
import { CHUNK, runSteps, type Steps } from '../cooperative.js';
import type { AnalyzedLayer, ModelAnalysis, NamedWeights, WeightSpec } from './types.js';

/** mulberry32: small, fast, good enough for weights. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a string mixed with a seed. */
function hash(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function* uniform(n: number, lo: number, hi: number, rand: () => number): Steps<Float32Array> {
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += CHUNK) {
    const end = Math.min(n, start + CHUNK);
    for (let i = start; i < end; i++) out[i] = lo + (hi - lo) * rand();
    yield;
  }
  return out;
}

function kernelFans(w: WeightSpec): { fanIn: number; fanOut: number } {
  const s = w.shape;
  if (w.name === 'depthwise_kernel') {
    const k = (s[0] ?? 1) * (s[1] ?? 1);
    return { fanIn: k, fanOut: k * (s[3] ?? 1) };
  }
  if (s.length === 2) return { fanIn: s[0] as number, fanOut: s[1] as number };
  const receptive = s.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: receptive * (s[s.length - 2] as number), fanOut: receptive * (s[s.length - 1] as number) };
}

/**
 * Random weights for every weight the analysis expects, keyed `<layer>/<name>`.
 * The same (analysis layer names, seed) always gives the same values.
 */
export function randomWeights(analysis: ModelAnalysis, seed = 0): NamedWeights {
  return runSteps(randomWeightsSteps(analysis, seed));
}

/** `randomWeights` in steps (lib/cooperative.ts). The seed is checked before the first step. */
export function randomWeightsSteps(analysis: ModelAnalysis, seed = 0): Steps<NamedWeights> {
  if (typeof seed !== 'number') throw v.typeError('integer', 'seed', seed);
  if (!Number.isInteger(seed)) throw v.rangeError('integer', 'seed', seed);
  return generateWeights(analysis, seed);
}

function* generateWeights(analysis: ModelAnalysis, seed: number): Steps<NamedWeights> {
  // Kernels feeding a BatchNormalization get variance gain / fan_in: gain 2
  // (He) in general, 0.5 when the BatchNormalization feeds a residual Add (or
  // is the output), so the residual stream does not grow block after block.
  const consumers = new Map<string, AnalyzedLayer[]>();
  for (const l of analysis.layers) for (const i of l.inbound) consumers.set(i, [...(consumers.get(i) ?? []), l]);
  const gain = new Map<string, number>();
  for (const l of analysis.layers) {
    if (l.className !== 'BatchNormalization') continue;
    const next = consumers.get(l.name) ?? [];
    const g = next.length === 0 || next.some((n) => n.className === 'Add') ? 0.5 : 2;
    for (const i of l.inbound) gain.set(i, g);
  }
  const out: NamedWeights = new Map();
  for (const layer of analysis.layers) {
    for (const w of layer.weights) {
      const rand = mulberry32(hash(w.fullName, seed));
      const n = v.product(w.shape);
      let data: Float32Array;
      switch (w.name) {
        case 'kernel':
        case 'depthwise_kernel': {
          const { fanIn, fanOut } = kernelFans(w);
          const g = gain.get(layer.name);
          const variance = g !== undefined ? g / fanIn : 2 / (fanIn + fanOut);
          const a = Math.sqrt(3 * variance);
          data = yield* uniform(n, -a, a, rand);
          break;
        }
        case 'gamma':
          data = yield* uniform(n, 0.9, 1.1, rand);
          break;
        case 'beta':
        case 'moving_mean':
          data = yield* uniform(n, -0.1, 0.1, rand);
          break;
        case 'moving_variance':
          data = yield* uniform(n, 0.5, 1.5, rand);
          break;
        default:
          data = yield* uniform(n, -0.05, 0.05, rand);
      }
      out.set(w.fullName, { shape: [...w.shape], data });
    }
  }
  return out;
}
