/**
 * The saved int8 model: a directory with `model.json` (structure, dtypes,
 * quantization parameters, metadata) and `weights.bin` (every constant
 * tensor's values and every per-channel scale array, little-endian, each
 * starting at a multiple of 4 bytes). Documented in docs/int8.md.
 *
 * Reading checks everything (JSON shape, byte ranges, dtypes, quantization
 * parameters, tensor ids and order via `checkQGraph`, and every shape by
 * replaying the graph into `lib/graph.ts`) and reports problems as
 * ModelFormatError naming the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ModelFormatError } from '../errors.js';
import type { QuantizationInfo } from './pipeline.js';
import { checkQGraph, toGraph, DTYPES, QOPS, type Attrs, type DType, type QGraph, type QNode, type QTensor } from './qgraph.js';

export const INT8_FORMAT = 'mobilenet-xnnpack-int8';
export const INT8_FORMAT_VERSION = 1;
export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

/** What the saved model says about itself besides the graph. */
export interface Int8Metadata {
  name: string;
  architecture: string;
  preprocessing: 'tf' | 'none';
  inputShape: number[];
  outputShape: number[];
  /** Where the float weights came from (path as given), when known. */
  source?: string;
  quantization: QuantizationInfo;
}

interface TensorJson {
  name?: string;
  shape: number[];
  batched: boolean;
  dtype: DType;
  scale?: number;
  zeroPoint?: number;
  channelDim?: number;
  /** [byte offset, count] of float32 scales in weights.bin */
  scales?: [number, number];
  /** [byte offset, byte length] of the values in weights.bin */
  data?: [number, number];
}

interface ModelJson {
  format: string;
  formatVersion: number;
  generatedBy?: string;
  model: Omit<Int8Metadata, 'quantization'>;
  quantization: Int8Metadata['quantization'];
  graph: {
    input: number;
    output: number;
    tensors: TensorJson[];
    nodes: Array<{ op: string; name?: string; inputs: number[]; output: number; attrs: Record<string, unknown> }>;
  };
  weights: { file: string; bytes: number; sha256: string };
}

/** JSON has no Infinity: open activation bounds are written as the strings "Infinity" / "-Infinity". */
function encodeAttr(v: number | readonly number[]): unknown {
  const one = (x: number): number | string => (Number.isFinite(x) ? x : x > 0 ? 'Infinity' : '-Infinity');
  return typeof v === 'number' ? one(v) : v.map(one);
}

function decodeAttr(v: unknown, bad: (m: string) => never, where: string): number | number[] {
  const one = (x: unknown): number => {
    if (x === 'Infinity') return Infinity;
    if (x === '-Infinity') return -Infinity;
    if (typeof x !== 'number' || !Number.isFinite(x)) return bad(`${where} has a value ${JSON.stringify(x)} that is not a number`);
    return x;
  };
  if (Array.isArray(v)) {
    if (v.length > 16) bad(`${where} is an array of ${v.length} values`);
    return v.map(one);
  }
  return one(v);
}

/** Writes `graph` + metadata to `dir` (created if needed). Returns the two file paths. */
export async function saveInt8Model(dir: string, graph: QGraph, meta: Int8Metadata, generatedBy: string): Promise<{ modelJson: string; weights: string }> {
  await fs.promises.mkdir(dir, { recursive: true });
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const put = (a: Float32Array | Int8Array | Int32Array): [number, number] => {
    const start = offset;
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    chunks.push(bytes);
    offset += bytes.byteLength;
    const pad = (4 - (offset % 4)) % 4;
    if (pad) {
      chunks.push(new Uint8Array(pad));
      offset += pad;
    }
    return [start, bytes.byteLength];
  };
  const tensors: TensorJson[] = graph.tensors.map((t) => {
    const j: TensorJson = { shape: [...t.shape], batched: t.batched, dtype: t.dtype };
    if (t.name !== undefined) j.name = t.name;
    if (t.scale !== undefined) j.scale = t.scale;
    if (t.zeroPoint !== undefined) j.zeroPoint = t.zeroPoint;
    if (t.channelDim !== undefined) j.channelDim = t.channelDim;
    if (t.scales !== undefined) j.scales = [put(t.scales)[0], t.scales.length];
    if (t.data !== undefined) j.data = put(t.data);
    return j;
  });
  const weights = Buffer.concat(chunks);
  const { quantization, ...model } = meta;
  const json: ModelJson = {
    format: INT8_FORMAT,
    formatVersion: INT8_FORMAT_VERSION,
    generatedBy,
    model,
    quantization,
    graph: {
      input: graph.input,
      output: graph.output,
      tensors,
      nodes: graph.nodes.map((n) => {
        const attrs: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(n.attrs)) attrs[k] = encodeAttr(v);
        return { op: n.op, ...(n.name === undefined ? {} : { name: n.name }), inputs: [...n.inputs], output: n.output, attrs };
      }),
    },
    weights: { file: WEIGHTS_FILE, bytes: weights.byteLength, sha256: createHash('sha256').update(weights).digest('hex') },
  };
  const modelJson = path.join(dir, MODEL_FILE);
  const weightsPath = path.join(dir, WEIGHTS_FILE);
  await fs.promises.writeFile(weightsPath, weights);
  await fs.promises.writeFile(modelJson, JSON.stringify(json, null, 1) + '\n');
  return { modelJson, weights: weightsPath };
}

/** True when `file` (a directory or a model.json) is a saved int8 model. */
export async function isInt8Model(file: string): Promise<boolean> {
  try {
    const st = await fs.promises.stat(file);
    const json = st.isDirectory() ? path.join(file, MODEL_FILE) : file;
    if (path.extname(json) !== '.json') return false;
    const fd = await fs.promises.open(json, 'r');
    try {
      const buf = Buffer.alloc(4096);
      const { bytesRead } = await fd.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString('utf8').includes(`"${INT8_FORMAT}"`);
    } finally {
      await fd.close();
    }
  } catch {
    return false;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isDims = (v: unknown): v is number[] => Array.isArray(v) && v.length <= 8 && v.every((d) => Number.isInteger(d) && d >= 1 && d <= 1 << 24);

/** Reads a saved int8 model (its directory or its model.json); `generatedBy`: the program that wrote it, when recorded. */
export async function loadInt8Model(file: string): Promise<{ graph: QGraph; meta: Int8Metadata; path: string; generatedBy?: string }> {
  let jsonPath = file;
  try {
    if ((await fs.promises.stat(file)).isDirectory()) jsonPath = path.join(file, MODEL_FILE);
  } catch (e) {
    throw new ModelFormatError('file not found', file, { cause: e });
  }
  const bad = (m: string): never => {
    throw new ModelFormatError(m, jsonPath);
  };
  let json: ModelJson;
  try {
    json = JSON.parse(await fs.promises.readFile(jsonPath, 'utf8')) as ModelJson;
  } catch (e) {
    throw new ModelFormatError(`not a readable JSON file (${(e as Error).message})`, jsonPath, { cause: e });
  }
  if (!isObj(json) || json.format !== INT8_FORMAT) bad(`not a ${INT8_FORMAT} model (format ${JSON.stringify(isObj(json) ? json.format : undefined)})`);
  if (json.formatVersion !== INT8_FORMAT_VERSION) bad(`format version ${JSON.stringify(json.formatVersion)} is not supported (this library reads version ${INT8_FORMAT_VERSION})`);
  if (!isObj(json.model) || !isObj(json.quantization) || !isObj(json.graph) || !isObj(json.weights)) bad('needs "model", "quantization", "graph" and "weights" objects');
  const m = json.model;
  if (typeof m.name !== 'string' || typeof m.architecture !== 'string' || (m.preprocessing !== 'tf' && m.preprocessing !== 'none') || !isDims(m.inputShape) || !isDims(m.outputShape)) {
    bad('"model" needs name, architecture, preprocessing ("tf" or "none"), inputShape and outputShape');
  }
  const wPath = path.join(path.dirname(jsonPath), WEIGHTS_FILE);
  if (json.weights.file !== WEIGHTS_FILE) bad(`weights file must be ${WEIGHTS_FILE}, not ${JSON.stringify(json.weights.file)}`);
  let weights: Buffer;
  try {
    weights = await fs.promises.readFile(wPath);
  } catch (e) {
    throw new ModelFormatError(`cannot read the weights (${(e as Error).message})`, wPath, { cause: e });
  }
  if (weights.byteLength !== json.weights.bytes) {
    throw new ModelFormatError(`has ${weights.byteLength} bytes, model.json says ${json.weights.bytes}`, wPath);
  }
  if (createHash('sha256').update(weights).digest('hex') !== json.weights.sha256) {
    throw new ModelFormatError('sha256 differs from the one model.json records (corrupt or replaced file)', wPath);
  }
  const g = json.graph;
  if (!Array.isArray(g.tensors) || !Array.isArray(g.nodes) || g.tensors.length > 1e6 || g.nodes.length > 1e6) bad('"graph" needs "tensors" and "nodes" arrays');
  const slice = (range: unknown, elemBytes: number, count: number, where: string): ArrayBuffer => {
    if (!Array.isArray(range) || range.length !== 2 || !range.every((x) => Number.isInteger(x) && x >= 0)) bad(`${where} needs [offset, length]`);
    const [off, len] = range as [number, number];
    if (len !== count * elemBytes || off + len > weights.byteLength) bad(`${where} [${off}, ${len}] does not hold ${count} values inside ${WEIGHTS_FILE} (${weights.byteLength} bytes)`);
    return new Uint8Array(weights.subarray(off, off + len)).buffer;
  };
  const tensors: QTensor[] = g.tensors.map((tj, id) => {
    const where = `tensor ${id}`;
    if (!isObj(tj) || !isDims(tj.shape) || typeof tj.batched !== 'boolean' || !DTYPES.includes(tj.dtype)) bad(`${where} needs shape, batched and a dtype (${DTYPES.join(', ')})`);
    const count = tj.shape.reduce((a, b) => a * b, 1);
    const t: { -readonly [K in keyof QTensor]: QTensor[K] } = { id, shape: tj.shape, batched: tj.batched, dtype: tj.dtype };
    if (tj.name !== undefined) t.name = String(tj.name);
    if (tj.scale !== undefined) t.scale = tj.scale;
    if (tj.zeroPoint !== undefined) t.zeroPoint = tj.zeroPoint;
    if (tj.channelDim !== undefined) t.channelDim = tj.channelDim;
    if (tj.scales !== undefined) {
      if (!Array.isArray(tj.scales) || !Number.isInteger(tj.scales[1]) || tj.scales[1] < 0 || tj.scales[1] > 1 << 24) bad(`${where} scales needs [offset, count]`);
      const n = tj.scales[1];
      t.scales = new Float32Array(slice([tj.scales[0], n * 4], 4, n, `${where} scales`));
    }
    if (tj.data !== undefined) {
      const size = tj.dtype === 'qint8' || tj.dtype === 'qcint8' ? 1 : 4;
      const buf = slice(tj.data, size, count, `${where} data`);
      t.data = tj.dtype === 'float32' ? new Float32Array(buf) : tj.dtype === 'qcint32' ? new Int32Array(buf) : new Int8Array(buf);
      // As for float models (lib/keras/weights.ts): a non-finite constant makes every output NaN.
      if (t.data instanceof Float32Array) {
        const i = t.data.findIndex((x) => !Number.isFinite(x));
        if (i >= 0) bad(`${where} data holds a non-finite value (${t.data[i]}) at index ${i}`);
      }
    }
    return t as QTensor;
  });
  const nodes: QNode[] = g.nodes.map((nj, i) => {
    const where = `node ${i}`;
    if (!isObj(nj) || !QOPS.includes(nj.op as QNode['op']) || !Array.isArray(nj.inputs) || !Number.isInteger(nj.output) || !isObj(nj.attrs)) {
      bad(`${where} needs a known op (${QOPS.join(', ')}), inputs, output and attrs`);
    }
    const attrs: Record<string, number | number[]> = {};
    for (const [k, v] of Object.entries(nj.attrs)) attrs[k] = decodeAttr(v, bad, `${where} attribute ${k}`);
    if (!nj.inputs.every((x) => Number.isInteger(x))) bad(`${where} inputs must be tensor ids`);
    return { op: nj.op as QNode['op'], ...(nj.name === undefined ? {} : { name: String(nj.name) }), inputs: nj.inputs, output: nj.output, attrs: attrs as Attrs };
  });
  const graph: QGraph = { tensors, nodes, input: g.input, output: g.output };
  checkQGraph(graph, jsonPath);
  checkShapes(graph, bad);
  const meta: Int8Metadata = { ...(m as Omit<Int8Metadata, 'quantization'>), quantization: json.quantization };
  if (JSON.stringify(tensors[graph.input]!.shape) !== JSON.stringify(meta.inputShape)) bad('the graph input shape differs from model.inputShape');
  if (JSON.stringify(tensors[graph.output]!.shape) !== JSON.stringify(meta.outputShape)) bad('the graph output shape differs from model.outputShape');
  return { graph, meta, path: jsonPath, ...(typeof json.generatedBy === 'string' ? { generatedBy: json.generatedBy } : {}) };
}

/**
 * Replays the typed graph into a schema `Graph` (`toGraph`): `lib/graph.ts`
 * validates every attribute, infers every shape (each must equal the
 * recorded one) and applies the schema's dtype rule.
 */
function checkShapes(g: QGraph, bad: (m: string) => never): void {
  try {
    toGraph(g).dispose();
  } catch (e) {
    bad((e as Error).message);
  }
}
