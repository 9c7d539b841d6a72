/**
 * `mobilenet info` for a saved int8 model (`mobilenet quantize` /
 * `QuantizedModel.save`, docs/int8.md): what its metadata records
 * (architecture, shapes, preprocessing, how it was quantized, the source
 * model), its file sizes and weight bytes, and its int8 graph's nodes by op.
 * The model is read and checked as `loadModel` reads it (`loadInt8Model`), so
 * a corrupt one is the same ModelFormatError naming the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatCount, formatShape } from '../keras/summary.js';
import { QuantizedModel } from '../quantize/index.js';
import { loadInt8Model, WEIGHTS_FILE } from '../quantize/format.js';
import type { QuantizationInfo } from '../quantize/pipeline.js';
import type { DType, QGraph } from '../quantize/qgraph.js';

export interface Int8InfoResult {
  format: 'int8';
  /** The model.json read. */
  file: string;
  name: string;
  /** As recorded: 'v1' | 'v2' | 'v3-small' | 'v3-large', or 'custom'. */
  architecture: string;
  precision: 'int8';
  /** The float model it was quantized from (path as given to the quantizer), when recorded. */
  source?: string;
  /** The program that wrote it (e.g. "mobilenet-xnnpack 0.1.0"), when recorded. */
  generatedBy?: string;
  inputShape: number[];
  outputShape: number[];
  classes: number;
  preprocessing: 'tf' | 'none';
  /** The quantization record of model.json; `equalization` 'off' when the file predates it. */
  quantization: QuantizationInfo & { equalization: NonNullable<QuantizationInfo['equalization']> };
  /** Sizes on disk, bytes. */
  modelJsonBytes: number;
  weightsFileBytes: number;
  /** Bytes of constant values and per-channel scales (weights.bin without alignment padding). */
  weightBytes: number;
  /** Bytes of constant values by dtype, and of the per-channel scales. */
  weightBytesByDtype: Partial<Record<DType | 'scales', number>>;
  /** Node counts: all, int8 (qint8 output), float32 (float32 output, converts aside), converts. */
  nodes: number;
  int8Nodes: number;
  floatNodes: number;
  converts: number;
  /** Node counts by op. */
  ops: Record<string, number>;
}

export interface Int8Info {
  result: Int8InfoResult;
  /** Per-node table for --summary. */
  summary: string;
}

/** Reads the int8 model at `file` (its directory or model.json). */
export async function int8Info(file: string): Promise<Int8Info> {
  const { graph, meta, path: jsonPath, generatedBy } = await loadInt8Model(file);
  const model = new QuantizedModel(graph, meta);
  const counts = model.describe();
  model.dispose();
  const ops: Record<string, number> = {};
  for (const n of graph.nodes) ops[n.op] = (ops[n.op] ?? 0) + 1;
  const byDtype: Partial<Record<DType | 'scales', number>> = {};
  const add = (k: DType | 'scales', bytes: number): void => {
    if (bytes > 0) byDtype[k] = (byDtype[k] ?? 0) + bytes;
  };
  for (const t of graph.tensors) {
    add(t.dtype, t.data?.byteLength ?? 0);
    add('scales', t.scales?.byteLength ?? 0);
  }
  const q = meta.quantization;
  const result: Int8InfoResult = {
    format: 'int8',
    file: jsonPath,
    name: meta.name,
    architecture: meta.architecture,
    precision: 'int8',
    ...(meta.source === undefined ? {} : { source: meta.source }),
    ...(generatedBy === undefined ? {} : { generatedBy }),
    inputShape: [...meta.inputShape],
    outputShape: [...meta.outputShape],
    classes: model.classes,
    preprocessing: meta.preprocessing,
    quantization: { ...q, equalization: q.equalization ?? 'off' },
    modelJsonBytes: (await fs.promises.stat(jsonPath)).size,
    weightsFileBytes: (await fs.promises.stat(path.join(path.dirname(jsonPath), WEIGHTS_FILE))).size,
    weightBytes: counts.weightBytes,
    weightBytesByDtype: byDtype,
    nodes: graph.nodes.length,
    int8Nodes: counts.int8Nodes,
    floatNodes: counts.floatNodes,
    converts: counts.converts,
    ops,
  };
  return { result, summary: nodeTable(graph) };
}

const list = (xs: readonly string[] | undefined): string => (xs === undefined || xs.length === 0 ? 'none' : xs.join(', '));

/** The `mobilenet info` text of an int8 model (rows as for float models). */
export function int8Text(r: Int8InfoResult): string {
  const q = r.quantization;
  const bytes = (n: number): string => `${formatCount(n)} bytes`;
  const rows: Array<[string, string]> = [
    ['format', `int8 (${r.file})`],
    ['model', r.name],
    ['architecture', r.architecture],
    ['precision', `int8 (weights ${q.weights}; activations ${q.activations})`],
    ['calibration', `${q.method}, ${formatCount(q.calibrationImages)} image${q.calibrationImages === 1 ? '' : 's'}, bias correction ${q.biasCorrection ? 'on' : 'off'}`],
    ['equalization', q.equalization],
    ['float32 ops', `${list(q.floatOps)}${q.floatOps?.length ? ' (no int8 kernel on the target backend)' : ''}`],
    ['float32 head', q.floatHead ? 'yes' : 'no'],
  ];
  if (q.floatLayers?.length) rows.push(['float layers', list(q.floatLayers)]);
  if (r.source !== undefined) rows.push(['source', r.source]);
  rows.push(
    ['input shape', `[${r.inputShape.join(', ')}]`],
    ['output shape', `[${r.outputShape.join(', ')}]`],
    ['classes', formatCount(r.classes)],
    ['preprocessing', r.preprocessing],
    ['files', `model.json ${bytes(r.modelJsonBytes)}, ${WEIGHTS_FILE} ${bytes(r.weightsFileBytes)}`],
    ['weights', `${bytes(r.weightBytes)} (${Object.entries(r.weightBytesByDtype).map(([k, n]) => `${k} ${formatCount(n)}`).join(', ')})`],
    ['nodes', `${r.nodes} (int8 ${r.int8Nodes}, float32 ${r.floatNodes}, convert ${r.converts})`],
    ['ops', Object.entries(r.ops).map(([op, n]) => `${op} ${n}`).join(', ')],
  );
  if (r.generatedBy !== undefined) rows.push(['written by', r.generatedBy]);
  return rows.map(([k, val]) => `${`${k}:`.padEnd(15)}${val}`).join('\n') + '\n';
}

/** One row per node: name and op, output shape and dtype, constant values read (weights, bias). */
function nodeTable(g: QGraph): string {
  const rows = g.nodes.map((n, i) => {
    const out = g.tensors[n.output]!;
    const constants = n.inputs.reduce((s, id) => s + (g.tensors[id]?.data?.length ?? 0), 0);
    return [`${n.name ?? `node_${i}`} (${n.op})`, out.batched ? formatShape(out.shape) : `[${out.shape.join(', ')}]`, out.dtype, formatCount(constants)];
  });
  const head = ['Node (op)', 'Output shape', 'Dtype', 'Constants'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells.map((s, c) => s.padEnd(widths[c]!)).join('  ').trimEnd();
  const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  return [line(head), rule, ...rows.map(line), rule, `Total nodes: ${g.nodes.length}`].join('\n') + '\n';
}
