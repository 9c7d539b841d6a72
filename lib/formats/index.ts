/**
 * Model file detection and dispatch.
 *
 * The format is decided by the file's first bytes (not its extension):
 * JSON (`{`) → TF.js layers `model.json`; `\x89HDF\r\n\x1a\n` → Keras HDF5;
 * `PK\x03\x04` → Keras 3 `.keras` zip. A directory is read as the
 * `model.json` inside it. The HDF5 and `.keras` readers live in
 * `./h5.ts` / `./keras3.ts` and are imported lazily.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ModelFormatError } from '../errors.js';
import type { KerasModelConfig, NamedWeights } from '../keras/types.js';
import * as v from '../validate.js';

export type ModelFormat = 'tfjs' | 'h5' | 'keras3';

export interface ModelFile {
  format: ModelFormat;
  /** Absolute path of the file read (model.json for a directory). */
  path: string;
  /** The Keras model config, when the file carries one (weights-only .h5 files do not). */
  config?: KerasModelConfig;
  weights: NamedWeights;
  /** Quantization dtypes of the weights (TF.js), empty when float32. */
  quantization?: string[];
  /** Class names stored with the model (lib/formats/class-names.ts). */
  classNames?: string[];
}

interface ExternalReader {
  (file: string): Promise<{ config?: KerasModelConfig; weights: NamedWeights; classNames?: string[] }>;
}

const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Resolves a path (a directory means its model.json) and checks it exists. */
export async function resolveModelPath(file: unknown): Promise<string> {
  if (typeof file !== 'string') throw v.typeError('string', 'path', file);
  if (file.length === 0) throw v.rangeError('non-empty path', 'path', file);
  let abs = path.resolve(file);
  let stat;
  try {
    stat = await fs.stat(abs);
  } catch (e) {
    throw new ModelFormatError('file not found', abs, { cause: e });
  }
  if (stat.isDirectory()) {
    const inner = path.join(abs, 'model.json');
    try {
      await fs.access(inner);
    } catch (e) {
      throw new ModelFormatError('directory has no model.json', abs, { cause: e });
    }
    abs = inner;
  }
  return abs;
}

/** Detects the format from the first bytes of the file. */
export async function detectFormat(file: string): Promise<ModelFormat> {
  const abs = await resolveModelPath(file);
  let head: Buffer;
  try {
    const fh = await fs.open(abs, 'r');
    try {
      head = Buffer.alloc(64);
      const { bytesRead } = await fh.read(head, 0, 64, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new ModelFormatError(`cannot read: ${(e as Error).message}`, abs, { cause: e });
  }
  if (head.length >= 8 && HDF5_MAGIC.every((b, i) => head[i] === b)) return 'h5';
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'keras3';
  let i = 0;
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) i = 3; // UTF-8 BOM
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x0a || head[i] === 0x0d || head[i] === 0x09)) i++;
  if (head[i] === 0x7b) return 'tfjs';
  if (head.length === 0) throw new ModelFormatError('empty file: not a model.json, .h5 or .keras file', abs);
  throw new ModelFormatError('unknown model format: not a TF.js model.json, Keras HDF5 (.h5) or Keras 3 (.keras) file', abs);
}

async function external(format: 'h5' | 'keras3'): Promise<ExternalReader> {
  // Imported lazily: h5wasm and fflate load only when such a file is read.
  if (format === 'h5') return (await import('./h5.js')).readH5;
  return (await import('./keras3.js')).readKeras3;
}

/** Reads any supported model file: config (when present) and named weights. */
export async function readModelFile(file: string): Promise<ModelFile> {
  const abs = await resolveModelPath(file);
  const format = await detectFormat(abs);
  if (format === 'tfjs') {
    const { readTfjs } = await import('./tfjs.js');
    const r = await readTfjs(abs);
    const out: ModelFile = { format, path: abs, config: r.config, weights: r.weights, quantization: r.quantization };
    if (r.classNames !== undefined) out.classNames = r.classNames;
    return out;
  }
  const read = await external(format);
  const r = await read(abs);
  const out: ModelFile = { format, path: abs, weights: r.weights };
  if (r.config !== undefined) out.config = r.config;
  if (r.classNames !== undefined) out.classNames = r.classNames;
  return out;
}

/** Reads only the model config (TF.js: without touching the shards); undefined for weights-only files. */
export async function readModelConfig(file: string): Promise<KerasModelConfig | undefined> {
  const abs = await resolveModelPath(file);
  const format = await detectFormat(abs);
  if (format === 'tfjs') {
    const { readTfjsModelJson } = await import('./tfjs.js');
    return (await readTfjsModelJson(abs)).config;
  }
  if (format === 'h5') return (await import('./h5.js')).readH5Config(abs);
  return (await import('./keras3.js')).readKeras3Config(abs);
}
