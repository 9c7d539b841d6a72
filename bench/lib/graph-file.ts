/**
 * A Graph IR on disk for the raw C++ runner (bench/native/): no JSON parser
 * needed on the C++ side.
 *
 * `<file>`: text, one record per line, fields separated by single spaces:
 *   MNXG 1
 *   weights <file name of the float32 blob, relative to this file>
 *   tensor <id> <batched 0|1> <rank> <dim>... <offset|-1> <length>   (offset/length in floats into the blob; constants only)
 *   node <op> <output id> <key>=<value> ...                            (values: numbers, comma lists, inf/-inf)
 *   input <id>
 *   output <id>
 * Array-valued weights (filter, bias, weights) are written as `<key>=<offset>:<length>` into the blob (no bias: `bias=-1:0`).
 * Keys are the Graph IR node fields (lib/graph.ts), e.g.
 *   node conv2d 5 input=4 filter=0:864 bias=864:32 kernel=3,3 stride=2,2 dilation=1,1 padding=0,1,1,0 groups=1 groupInputChannels=3 groupOutputChannels=32 outputMin=0 outputMax=6
 * `<file>.bin`: little-endian float32 values.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Graph, Node } from '../../lib/graph.js';

function num(x: number): string {
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return String(x);
}

export function writeGraphFile(file: string, graph: Graph): void {
  graph.validateComplete();
  const blobs: Float32Array[] = [];
  let offset = 0;
  const put = (a: Float32Array | null): string => {
    if (a === null) return '-1:0';
    const at = offset;
    blobs.push(a);
    offset += a.length;
    return `${at}:${a.length}`;
  };
  const lines = ['MNXG 1', `weights ${path.basename(file)}.bin`];
  for (const t of graph.tensors) {
    const data = t.data ?? null;
    const ref = data === null ? '-1 0' : put(data).replace(':', ' ');
    lines.push(`tensor ${t.id} ${t.batched ? 1 : 0} ${t.shape.length} ${t.shape.join(' ')} ${ref}`.replace(/ +/g, ' '));
  }
  lines.push(`input ${graph.inputTensor}`);
  for (const n of graph.nodes) {
    const fields: string[] = [];
    for (const [k, v] of Object.entries(n as Node)) {
      if (k === 'op' || k === 'output' || k === 'name') continue;
      if (v instanceof Float32Array || v === null) fields.push(`${k}=${put(v)}`);
      else if (Array.isArray(v)) fields.push(`${k}=${(v as number[]).map(num).join(',')}`);
      else if (typeof v === 'number') fields.push(`${k}=${num(v)}`);
    }
    lines.push(`node ${n.op} ${n.output} ${fields.join(' ')}`);
  }
  lines.push(`output ${graph.outputTensor}`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const bin = Buffer.alloc(offset * 4);
  let at = 0;
  for (const b of blobs) {
    Buffer.from(b.buffer, b.byteOffset, b.byteLength).copy(bin, at * 4);
    at += b.length;
  }
  fs.writeFileSync(`${file}.bin`, bin);
}
