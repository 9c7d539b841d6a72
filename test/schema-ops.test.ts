/**
 * Every op of the schema (lib/schema.ts), generated from it: each op's example
 * graph (test/helpers/op-examples.ts) runs on
 *   - the addon (native backend) against the reference backend,
 *   - the raw C++ runner (bench/native/runner.cc) on the same serialized graph
 *     file against the addon (same parser, same lowering: within 1e-6),
 *   - onnxruntime on the ONNX export against the reference backend,
 * and native/schema.gen.h must be the header generated from the current schema.
 * Tolerance against the reference: |a - b| <= 1e-5 + 1e-4 * |b|.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { OPS, OP_NAMES } from '../lib/schema.js';
import { compileGraph } from '../lib/runtime.js';
import { nativePath } from '../lib/binding.js';
import { exportOnnx } from '../bench/onnx/export.js';
import { writeGraphFile } from '../bench/lib/graph-file.js';
import { generateNativeSchema } from '../scripts/native-schema.js';
import { OP_EXAMPLES, randomArray } from './helpers/op-examples.js';

const BATCH = 2;

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs((actual[i] as number) - (expected[i] as number)) - (1e-5 + 1e-4 * Math.abs(expected[i] as number));
    if (excess > worst) {
      worst = excess;
      at = i;
    }
  }
  expect(at, `${what}: element ${at} is ${actual[at]}, expected ${expected[at]}`).toBe(-1);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-schema-ops-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('op schema', () => {
  it('native/schema.gen.h is generated from lib/schema.ts (npx tsx scripts/gen-native-schema.ts)', () => {
    const file = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'native', 'schema.gen.h');
    expect(fs.readFileSync(file, 'utf8')).toBe(generateNativeSchema());
  });

  it('every op has an example and a distinct code', () => {
    expect(Object.keys(OP_EXAMPLES).sort()).toEqual([...OP_NAMES].sort());
    expect(new Set(OP_NAMES.map((n) => OPS[n].code)).size).toBe(OP_NAMES.length);
  });
});

describe.each(OP_NAMES)('op %s', (op) => {
  const runner = path.join(path.dirname(nativePath()), 'xnnpack_bench_runner');

  it('example uses the op; addon = reference; raw runner = addon; onnxruntime = reference', async () => {
    const g = OP_EXAMPLES[op]();
    expect(g.nodes.some((n) => n.op === op)).toBe(true);
    const ref = await compileGraph(g, { backend: 'reference', batch: BATCH });
    const nat = await compileGraph(g, { backend: 'native', batch: BATCH, threads: 1 });
    const x = randomArray(ref.inputSize, 11 + OPS[op].code);
    const expected = ref.runSync(x);
    const native = await nat.run(x);
    expectClose(native, expected, `${op}: addon vs reference`);
    // The output is not trivially constant (the comparison means something).
    expect(new Set(expected).size).toBeGreaterThan(1);

    // The raw C++ runner on the serialized graph file.
    const file = path.join(dir, `${op}.mnxg`);
    writeGraphFile(file, g);
    fs.writeFileSync(`${file}.x`, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    const r = spawnSync(runner, ['--graph', file, '--input', `${file}.x`, '--batch', String(BATCH), '--threads', '1', '--runs', '1', '--warmup', '0'], { encoding: 'utf8' });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const json = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { output: number[] };
    expect(json.output).toHaveLength(native.length);
    for (let i = 0; i < native.length; i++) expect(Math.abs((json.output[i] as number) - (native[i] as number))).toBeLessThanOrEqual(1e-6);

    // The ONNX export in onnxruntime.
    const session = await ort.InferenceSession.create(exportOnnx(g, { batch: BATCH }), { intraOpNumThreads: 1, interOpNumThreads: 1 });
    try {
      const input = g.tensors[g.inputTensor]!;
      const res = await session.run({ [session.inputNames[0] as string]: new ort.Tensor('float32', x, [BATCH, ...input.shape]) });
      expectClose(res[session.outputNames[0] as string]!.data as Float32Array, expected, `${op}: onnxruntime vs reference`);
    } finally {
      await session.release();
    }
    ref.dispose();
    nat.dispose();
  });
});
