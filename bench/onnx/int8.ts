/**
 * The int8 model the benchmark quantized (saved by `quantizeModel`, as
 * `mobilenet quantize` writes it) as an ONNX file in QDQ form, for the
 * `onnxruntime-node-int8` row: the same quantized graph, weights and
 * activation ranges as the `mobilenet-xnnpack-int8` row (export.ts).
 */
import fs from 'node:fs';
import { loadQuantizedModel } from '../../lib/quantize/index.js';
import { toGraph } from '../../lib/quantize/qgraph.js';
import { exportOnnx, type OnnxExportOptions } from './export.js';

/** Writes `int8Dir`'s quantized graph to `file` (NCHW input by default, as the float row's file); returns its size in bytes. */
export async function exportInt8Onnx(int8Dir: string, file: string, options: OnnxExportOptions = {}): Promise<number> {
  const q = await loadQuantizedModel(int8Dir);
  try {
    const graph = toGraph(q.graph);
    try {
      const bytes = exportOnnx(graph, { inputLayout: 'nchw', ...options });
      fs.writeFileSync(file, bytes);
      return bytes.length;
    } finally {
      graph.dispose();
    }
  } finally {
    q.dispose();
  }
}
