/**
 * Matching a file's weights to a model's layers: the one routine every
 * format (TF.js `model.json`, `.h5`, `.keras`) goes through, at load
 * (`lowerModel`) and at conversion (`convertModel`).
 *
 * Weights are keyed `<layer>/<weight>` (TF.js manifest naming; the readers
 * normalize `.h5` and `.keras` names to it). A weight of an inlined nested
 * model may also carry the nested model's name in front
 * (`mobilenetv2_1.00_224/Conv1/kernel`, as `.h5` files of transfer-learning
 * models store it). Every missing, extra or mis-shaped weight is counted in
 * one `WeightMismatchError` whose message summarizes (counts and the first
 * few of each) and, when the caller can tell, says what the file's weights
 * look like; the full lists are on the error's `details`. Weights holding
 * NaN or ±Infinity are an error too (a non-finite weight always yields NaN
 * outputs, so it is reported at load).
 */
import { WeightMismatchError, type WeightMismatchDetails } from '../errors.js';
import { fmtShape } from './nodes.js';
import type { ModelAnalysis, NamedWeights, WeightTensor } from './types.js';
import { CHUNK, runSteps, type Steps } from '../cooperative.js';

export interface MatchOptions {
  /** Accept NaN/Infinity in weights (default false: WeightMismatchError). */
  allowNonFinite?: boolean;
  /**
   * Says what a file's weights look like (e.g. "MobileNet v1 alpha 0.25
   * without top: pass { architecture: 'v1', alpha: 0.25, includeTop: false }"),
   * from their names and shapes; undefined when it cannot tell. Used only to
   * word a mismatch.
   */
  identify?: (shapes: ReadonlyMap<string, readonly number[]>) => string | undefined;
  /** The file the weights come from, named in the error. */
  file?: string;
}

/** How many of each kind of mismatch the message names. */
const SHOWN = 3;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function firstFew(list: readonly string[], sep: string): string {
  const shown = list.slice(0, SHOWN).join(sep);
  return list.length > SHOWN ? `${shown}${sep}and ${list.length - SHOWN} more` : shown;
}

/**
 * Matches the weights against the analysis. Returns the weights keyed by the
 * analysis's full names (nested-model prefixes removed).
 *
 * @throws WeightMismatchError for missing, extra, mis-shaped or non-finite weights
 */
export function matchWeights(analysis: ModelAnalysis, weights: NamedWeights, options: MatchOptions = {}): NamedWeights {
  return runSteps(matchWeightsSteps(analysis, weights, options));
}

/** `matchWeights` in steps (lib/cooperative.ts): the non-finite check yields every `CHUNK` values. */
export function* matchWeightsSteps(analysis: ModelAnalysis, weights: NamedWeights, options: MatchOptions = {}): Steps<NamedWeights> {
  const expected = new Map<string, number[]>();
  for (const layer of analysis.layers) for (const w of layer.weights) expected.set(w.fullName, w.shape);
  const nested = analysis.nestedModels ?? [];
  const resolved: NamedWeights = new Map();
  const unused: Array<[string, WeightTensor]> = [];
  for (const [name, w] of weights) {
    let key = name;
    if (!expected.has(key) && nested.length > 0) {
      const prefix = nested.find((n) => name.startsWith(`${n}/`));
      if (prefix !== undefined) key = name.slice(prefix.length + 1);
    }
    if (expected.has(key) && !resolved.has(key)) resolved.set(key, w);
    else unused.push([name, w]);
  }
  const missing: string[] = [];
  const misShaped: string[] = [];
  for (const [name, shape] of expected) {
    const w = resolved.get(name);
    if (w === undefined) missing.push(name);
    else if (!sameShape(w.shape, shape) || w.data.length !== shape.reduce((a, b) => a * b, 1)) misShaped.push(name);
  }
  if (missing.length + misShaped.length + unused.length > 0) {
    const details: WeightMismatchDetails = {
      expected: expected.size,
      missing: missing.map((n) => ({ name: n, expected: expected.get(n) as number[] })),
      misShaped: misShaped.map((n) => ({ name: n, expected: expected.get(n) as number[], actual: [...(resolved.get(n) as WeightTensor).shape] })),
      extra: unused.map(([n, w]) => ({ name: n, actual: [...w.shape] })),
    };
    const parts: string[] = [];
    if (misShaped.length) {
      parts.push(`${misShaped.length} of the ${expected.size} weights it expects have another shape in the file (${firstFew(details.misShaped.map((m) => `${m.name}: expected ${fmtShape(m.expected)} but the file has ${fmtShape(m.actual)}`), '; ')})`);
    }
    if (missing.length) parts.push(`${missing.length} of the ${expected.size} weights it expects are missing (${firstFew(details.missing.map((m) => `${m.name} ${fmtShape(m.expected)}`), ', ')})`);
    if (unused.length) parts.push(`${unused.length} weights of the file are used by no layer (${firstFew(details.extra.map((m) => `${m.name} ${fmtShape(m.actual)}`), ', ')})`);
    let hint: string | undefined;
    if (options.identify !== undefined) {
      const shapes = new Map([...weights].map(([n, w]) => [n, w.shape] as [string, number[]]));
      hint = options.identify(shapes);
    }
    const where = options.file === undefined ? '' : `${options.file}: `;
    const message = `${where}Weights do not match model '${analysis.name}': ${parts.join('; ')}.${hint === undefined ? '' : ` The file looks like ${hint}.`}`;
    throw new WeightMismatchError(message, details);
  }
  if (!options.allowNonFinite) {
    for (const [name, w] of resolved) {
      const data = w.data;
      // x * 0 is NaN exactly for NaN and ±Infinity: one branch-free pass, then find the index.
      let acc = 0;
      for (let start = 0; start < data.length; start += CHUNK) {
        const end = Math.min(data.length, start + CHUNK);
        for (let i = start; i < end; i++) acc += (data[i] as number) * 0;
        yield;
      }
      if (acc !== 0) {
        const i = data.findIndex((x) => !Number.isFinite(x));
        throw new WeightMismatchError(`${options.file === undefined ? '' : `${options.file}: `}Weight ${name} holds a non-finite value (${data[i]}) at index ${i}`);
      }
    }
  }
  return resolved;
}
