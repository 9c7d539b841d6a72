/**
 * The int8 model the benchmark quantized (saved by `quantizeModel`, as
 * `mobilenet quantize` writes it) as an ONNX file in QDQ form, for the
 * `onnxruntime-node-int8` row: the same quantized graph, weights and
 * activation ranges as the `mobilenet-xnnpack-int8` row (export.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import { loadQuantizedModel } from '../../lib/quantize/index.js';
import { toGraph } from '../../lib/quantize/qgraph.js';
import { exportOnnx, type OnnxExportOptions } from './export.js';

/**
 * How the int8 tensors are stored for onnxruntime on this CPU (export.ts's
 * `int8Storage`): 'int8' where its U8S8 kernels are exact (x86-64 with
 * AVX-512 VNNI or AVX-VNNI, and other architectures), 'uint8' on x86-64
 * without VNNI, where the U8S8 kernels' 16-bit pairwise sums saturate and
 * whole networks come out wrong (a V2 at 0.09 absolute probability on AVX2);
 * the same graph either way.
 */
export function onnxInt8Storage(cpuinfo = readCpuinfo()): 'int8' | 'uint8' {
  if (os.arch() !== 'x64') return 'int8';
  const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '').trim().split(/\s+/));
  return flags.has('avx512_vnni') || flags.has('avx_vnni') ? 'int8' : 'uint8';
}

function readCpuinfo(): string {
  try {
    return fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

/** Writes `int8Dir`'s quantized graph to `file` (NCHW input by default, as the float row's file); returns its size in bytes. */
export async function exportInt8Onnx(int8Dir: string, file: string, options: OnnxExportOptions = {}): Promise<number> {
  const q = await loadQuantizedModel(int8Dir);
  try {
    const graph = toGraph(q.graph);
    try {
      const bytes = exportOnnx(graph, { inputLayout: 'nchw', int8Storage: onnxInt8Storage(), ...options });
      fs.writeFileSync(file, bytes);
      return bytes.length;
    } finally {
      graph.dispose();
    }
  } finally {
    q.dispose();
  }
}
