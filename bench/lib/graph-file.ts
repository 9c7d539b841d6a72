/**
 * A Graph IR on disk for the raw C++ runner (bench/native/runner.cc): the
 * serialized graph of lib/graph-format.ts (the same bytes the addon reads),
 * parsed by the same C++ reader (native/format.cc).
 */
import fs from 'node:fs';
import type { Graph } from '../../lib/graph.js';
import { serializeGraph } from '../../lib/graph-format.js';

export function writeGraphFile(file: string, graph: Graph): void {
  fs.writeFileSync(file, serializeGraph(graph));
}
