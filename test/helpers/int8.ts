/**
 * Checks every int8 node of a quantized graph against the float32 reference
 * kernel run on that node's own dequantized int8 inputs and weights: the
 * only difference left is the requantization of the output, so a correct
 * kernel is within half an output step (plus float rounding) of the float
 * result clamped to the int8 range. Used by the int8 tests on single ops and
 * on whole networks.
 */
import { QReferenceRuntime } from '../../lib/backends/reference-qs8.js';
import type { QGraph, QNode, QTensor } from '../../lib/quantize/qgraph.js';

/** Real values of a tensor's storage (an activation as of the runtime's last run, or a constant). */
export function dequantize(t: QTensor, values: Float32Array | Int8Array | Int32Array): Float32Array {
  const out = new Float32Array(values.length);
  if (t.dtype === 'float32') {
    out.set(values);
  } else if (t.dtype === 'qint8') {
    for (let i = 0; i < values.length; i++) out[i] = (values[i]! - t.zeroPoint!) * t.scale!;
  } else {
    const cd = t.channelDim!;
    const channels = t.shape[cd]!;
    const inner = t.shape.slice(cd + 1).reduce((a, b) => a * b, 1);
    for (let i = 0; i < values.length; i++) out[i] = values[i]! * t.scales![Math.floor(i / inner) % channels]!;
  }
  return out;
}

export interface NodeCheck {
  node: QNode;
  /** Largest |int8 result - float result| in output steps. */
  steps: number;
}

/** Runs `q` on `input` (batch 1) and checks each int8 node; returns the worst error per node. */
export function checkInt8Nodes(q: QGraph, input: Float32Array): NodeCheck[] {
  const rt = new QReferenceRuntime(q, 1);
  rt.run(input, new Float32Array(rt.outputSize));
  const checks: NodeCheck[] = [];
  for (const n of q.nodes) {
    const yT = q.tensors[n.output]!;
    if (n.op === 'convert' || yT.dtype !== 'qint8') continue;
    const xT = q.tensors[n.inputs[0]!]!;
    const tensors: QTensor[] = [{ id: 0, shape: xT.shape, batched: true, dtype: 'float32' }];
    const inputs = [0];
    for (const id of n.inputs.slice(1)) {
      const t = q.tensors[id]!;
      const data = dequantize(t, t.batched ? rt.values(id) : t.data!);
      inputs.push(tensors.length);
      tensors.push({ id: tensors.length, shape: t.shape, batched: false, dtype: 'float32', data });
    }
    const out = tensors.length;
    tensors.push({ id: out, shape: yT.shape, batched: true, dtype: 'float32' });
    const mini: QGraph = { tensors, nodes: [{ ...n, inputs, output: out }], input: 0, output: out };
    const ref = new QReferenceRuntime(mini, 1);
    const want = new Float32Array(ref.outputSize);
    ref.run(dequantize(xT, rt.values(xT.id)), want);
    const got = dequantize(yT, rt.values(yT.id));
    const lo = yT.scale! * (-128 - yT.zeroPoint!);
    const hi = yT.scale! * (127 - yT.zeroPoint!);
    let worst = 0;
    for (let i = 0; i < got.length; i++) {
      const w = Math.min(Math.max(want[i]!, lo), hi);
      worst = Math.max(worst, Math.abs(got[i]! - w) / yT.scale!);
    }
    checks.push({ node: n, steps: worst });
  }
  return checks;
}
