/**
 * Activation range equalization (a form of cross-layer equalization, Nagel
 * et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias
 * Correction", applied to activation ranges rather than weight ranges).
 *
 * An activation tensor is quantized per tensor: every channel shares the
 * scale set by the widest channel, so a channel that only reaches 0.3 of a
 * [0, 6] range gets about 13 of the 255 steps. When the tensor is written by
 * a conv2d / depthwise convolution whose fused activation commutes with a
 * positive per-channel scale (lower bound 0 or none) and read only by
 * convolutions / dense layers (possibly through zero padding or pooling),
 * channel i can be multiplied by s_i > 1 (the producer's output channel i:
 * weights and bias) and divided by s_i where it is read (the consumers'
 * input channel i). In float32 the network is unchanged on the calibration
 * data; in int8 each channel spans the whole tensor range, as with
 * per-channel activation quantization.
 *
 * - s_i = tensorMax / channelMax_i (and likewise on the negative side for a
 *   linear output), at least 1, at most `maxScale`: the channel then
 *   saturates at its own calibration maximum instead of the tensor's, and
 *   the fused upper bound (ReLU6's 6) never binds earlier than the int8
 *   range does.
 * - It is free when the consumers' weights are per-channel in that channel
 *   (depthwise filters, quantized per output channel = per input channel) or
 *   stay float32 (the classifier head, float layers). A consumer conv2d /
 *   dense quantized to int8 has its input channel i divided by s_i inside a
 *   per-output-channel scale: it loses weight precision there, so by default
 *   (`costly: false`) such tensors are left alone.
 */
import type { Range } from './quantize.js';
import type { QGraph, QNode, QTensor } from './qgraph.js';

export interface EqualizeOptions {
  /** Whether a node stays float32 in the quantized graph (head, float layers, float ops). */
  isFloat: (node: QNode, index: number) => boolean;
  /** Also equalize tensors read by an int8 conv2d / dense (which loses weight precision). Default false. */
  costly?: boolean;
  /** Largest channel scale. Default 64. */
  maxScale?: number;
}

export interface EqualizeResult {
  graph: QGraph;
  ranges: Map<number, Range>;
  means: Map<number, Float64Array>;
  /** Names of the layers whose output channels were rescaled. */
  equalized: string[];
}

const PASS: ReadonlySet<string> = new Set(['globalAveragePool', 'maxPool2d', 'averagePool2d', 'pad']);

/** Whether a fused output bound pair commutes with a positive per-channel scale (up to the upper bound). */
function scalable(n: QNode): boolean {
  const lo = (n.attrs.outputMin as number | undefined) ?? -Infinity;
  return lo === 0 || lo === -Infinity;
}

/**
 * Rescales the channels of activation tensors so that each spans its tensor's
 * int8 range (see the file comment). Returns a new float graph (weights
 * copied where changed) with the calibration statistics updated to match.
 */
export function equalizeActivations(
  fg: QGraph,
  calibration: {
    ranges: ReadonlyMap<number, Range>;
    means: ReadonlyMap<number, Float64Array>;
    channelRanges: ReadonlyMap<number, { min: Float32Array; max: Float32Array }>;
  },
  options: EqualizeOptions,
): EqualizeResult {
  const maxScale = options.maxScale ?? 64;
  const tensors: QTensor[] = [...fg.tensors];
  const ranges = new Map(calibration.ranges);
  const means = new Map(calibration.means);
  const equalized: string[] = [];
  const readers = new Map<number, number[]>();
  fg.nodes.forEach((n, i) => {
    for (const id of n.inputs) {
      const r = readers.get(id) ?? [];
      r.push(i);
      readers.set(id, r);
    }
  });
  const onlyReader = (id: number): boolean => (readers.get(id)?.length ?? 0) === 1;

  fg.nodes.forEach((p, pi) => {
    if ((p.op !== 'conv2d' && p.op !== 'depthwiseConv2d') || !scalable(p)) return;
    const t = p.output;
    const out = tensors[t]!;
    const cr = calibration.channelRanges.get(t);
    const range = ranges.get(t);
    if (t === fg.output || cr === undefined || range === undefined || !out.batched) return;
    const channels = out.shape[out.shape.length - 1]!;
    // Walk the readers: weighted consumers (to rescale) and pass-through ops (whose outputs change scale too).
    const consumers: number[] = [];
    const passed: number[] = [];
    let costly = false;
    const walk = (id: number): boolean => {
      if (id === fg.output) return false;
      for (const ci of readers.get(id) ?? []) {
        const c = fg.nodes[ci]!;
        if (c.inputs.indexOf(id) !== 0 || c.inputs.lastIndexOf(id) !== 0) return false;
        if (PASS.has(c.op)) {
          if (c.op === 'pad' && ((c.attrs.value as number | undefined) ?? 0) !== 0) return false;
          passed.push(c.output);
          if (!walk(c.output)) return false;
        } else if (c.op === 'depthwiseConv2d' || (c.op === 'conv2d' && ((c.attrs.groups as number | undefined) ?? 1) === 1) || c.op === 'fullyConnected') {
          if (!onlyReader(c.inputs[1]!)) return false;
          if (c.op !== 'depthwiseConv2d' && !options.isFloat(c, ci)) costly = true;
          consumers.push(ci);
        } else {
          return false;
        }
      }
      return true;
    };
    if (!walk(t) || consumers.length === 0 || (costly && options.costly !== true)) return;
    if (!onlyReader(p.inputs[1]!) || (p.inputs[2] !== undefined && !onlyReader(p.inputs[2]))) return;

    const hi = Math.max(range.max, 0);
    const lo = Math.min(range.min, 0);
    const s = new Float64Array(channels);
    let changed = false;
    for (let i = 0; i < channels; i++) {
      let k = Infinity;
      if (cr.max[i]! > 0) k = Math.min(k, hi / cr.max[i]!);
      if (cr.min[i]! < 0) k = Math.min(k, lo / cr.min[i]!);
      s[i] = Number.isFinite(k) ? Math.min(maxScale, Math.max(1, k)) : 1;
      if (s[i] !== 1) changed = true;
    }
    if (!changed) return;

    // Producer: output channel i times s_i (weights and bias).
    const scaleConst = (id: number, channelOf: (index: number) => number, by: (c: number) => number): void => {
      const w = tensors[id]!;
      const data = Float32Array.from(w.data as Float32Array, (x, k) => Math.fround(x * by(channelOf(k))));
      tensors[id] = { ...w, data };
    };
    const pw = tensors[p.inputs[1]!]!;
    if (p.op === 'depthwiseConv2d') scaleConst(p.inputs[1]!, (k) => k % channels, (c) => s[c]!);
    else scaleConst(p.inputs[1]!, (k) => Math.floor(k / (pw.data!.length / channels)), (c) => s[c]!);
    if (p.inputs[2] !== undefined) scaleConst(p.inputs[2], (k) => k, (c) => s[c]!);
    // Consumers: input channel i divided by s_i.
    for (const ci of consumers) {
      const c = fg.nodes[ci]!;
      const w = tensors[c.inputs[1]!]!;
      if (c.op === 'depthwiseConv2d') {
        const outC = w.shape[3]!;
        const m = outC / channels;
        scaleConst(c.inputs[1]!, (k) => Math.floor((k % outC) / m), (i) => 1 / s[i]!);
      } else {
        const inner = w.shape[w.shape.length - 1]!;
        scaleConst(c.inputs[1]!, (k) => k % inner, (i) => 1 / s[i]!);
      }
    }
    // Statistics of the rescaled tensors: means times s_i, ranges from the rescaled channel ranges.
    for (const id of [t, ...passed]) {
      const mean = means.get(id);
      if (mean !== undefined) means.set(id, mean.map((x, i) => x * s[i]!));
      const c = calibration.channelRanges.get(id);
      const r = ranges.get(id);
      if (c === undefined || r === undefined) continue;
      let mn = r.min;
      let mx = r.max;
      for (let i = 0; i < channels; i++) {
        mn = Math.min(mn, c.min[i]! * s[i]!);
        mx = Math.max(mx, c.max[i]! * s[i]!);
      }
      // The producer's own tensor keeps its range (every channel now reaches its edge); pooled ones may widen.
      ranges.set(id, id === t ? r : { min: mn, max: mx });
    }
    equalized.push(p.name ?? `node ${pi}`);
  });
  return { graph: { ...fg, tensors }, ranges, means, equalized };
}
