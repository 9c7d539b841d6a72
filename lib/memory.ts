/**
 * Estimate of the memory one compiled runtime needs, checked before
 * compiling (an input shape of 16000×16000 in a config compiles into 11 GB,
 * `batch: 4096` or `alpha: 40` past 6 GB, with no warning otherwise).
 *
 * estimate = packed weights (float32 filters and biases, counted once)
 *          + batch × peak of the live activations (a tensor lives from the
 *            node that produces it to the last node that reads it, in
 *            graph order — what XNNPACK's memory planner can reuse at best)
 *          + batch × (input + output) (the runtime's own buffers).
 *
 * It is a lower bound of what XNNPACK allocates (its workspaces are left
 * out), so a refusal is never a false alarm; the limit
 * (`DEFAULT_MAX_COMPILE_BYTES`, 4 GiB) leaves room above it.
 */
import type { Graph } from './graph.js';

export interface CompileEstimate {
  weightBytes: number;
  /** Peak bytes of live activations for one sample. */
  activationBytesPerSample: number;
  /** Input + output bytes for one sample. */
  ioBytesPerSample: number;
  batch: number;
  total: number;
}

const INPUT_FIELDS = ['input', 'a', 'b'] as const;

export function estimateCompileBytes(graph: Graph, batch: number): CompileEstimate {
  const tensors = graph.tensors;
  const size = (id: number): number => {
    const t = tensors[id];
    if (t === undefined || !t.batched) return 0;
    return t.shape.reduce((p, d) => p * d, 1) * 4;
  };
  let weightBytes = 0;
  for (const t of tensors) if (!t.batched && t.data !== undefined) weightBytes += t.data.byteLength;
  const nodes = graph.nodes;
  const lastUse = new Map<number, number>();
  nodes.forEach((n, i) => {
    const rec = n as unknown as Record<string, unknown>;
    for (const f of INPUT_FIELDS) if (typeof rec[f] === 'number') lastUse.set(rec[f] as number, i);
    for (const f of ['filter', 'bias', 'weights'] as const) {
      const d = rec[f];
      if (d instanceof Float32Array) weightBytes += d.byteLength;
    }
  });
  lastUse.set(graph.outputTensor, nodes.length);
  let live = size(graph.inputTensor);
  let peak = live;
  const dying = new Map<number, number[]>();
  for (const [t, i] of lastUse) dying.set(i, [...(dying.get(i) ?? []), t]);
  nodes.forEach((n, i) => {
    live += size(n.output);
    peak = Math.max(peak, live);
    for (const t of dying.get(i) ?? []) live -= size(t);
  });
  const ioBytesPerSample = size(graph.inputTensor) + size(graph.outputTensor);
  const total = weightBytes + batch * (peak + ioBytesPerSample);
  return { weightBytes, activationBytesPerSample: peak, ioBytesPerSample, batch, total };
}

/** The message of a refused compile. */
export function compileTooLarge(e: CompileEstimate, limit: number): string {
  const mb = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
  return (
    `Expected a compile needing at most ${limit} bytes for batch ${e.batch} but received an estimate of ${e.total} bytes ` +
    `(weights ${mb(e.weightBytes)}, activations ${mb(e.activationBytesPerSample)} per sample × ${e.batch}); ` +
    'lower the batch or the input size, or raise the maxCompileBytes option or MOBILENET_MAX_COMPILE_BYTES'
  );
}
