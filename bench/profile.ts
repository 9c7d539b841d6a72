/**
 * `npx tsx bench/profile.ts [--model ID] [--threads N] [--batch N] [--runs N] [--perf]`:
 * where the time goes, for one model and batch size.
 *
 *  1. Binding cost: raw C++ (`xnn_invoke_runtime`) vs `Runtime.runSync` (copy
 *     in, invoke, copy out on the main thread) vs `Model.predict` (argument
 *     checks + libuv worker hop + promise), interleaved.
 *  2. XNNPACK per operator (the raw C++ runner with XNN_FLAG_BASIC_PROFILING,
 *     when built against an XNNPACK that has it), summed by operator type.
 *  3. onnxruntime-node per node (its own profiler), summed by op type, with
 *     the fusions its graph optimizer made.
 *  4. With --perf: `perf record` of the raw C++ runner, top symbols (which
 *     XNNPACK micro-kernels run).
 * Prints Markdown.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MODEL_SPECS, makeInput, prepareModel } from './lib/models.js';
import { writeGraphFile } from './lib/graph-file.js';
import { cppRunnerPath } from './engines.js';
import { nowMs, quantile } from './lib/stats.js';
import { exportOnnx } from './onnx/export.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'v1-0.75-224' },
    threads: { type: 'string', default: '1' },
    runs: { type: 'string', default: '50' },
    batch: { type: 'string', default: '1' },
    perf: { type: 'boolean', default: false },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const batch = Number(values.batch);
const spec = MODEL_SPECS.find((m) => m.id === values.model);
if (!spec || !(threads > 0) || !(runs > 0) || !(Number.isInteger(batch) && batch > 0)) {
  process.stderr.write(`usage: bench/profile.ts [--model ${MODEL_SPECS.map((m) => m.id).join('|')}] [--threads N] [--batch N] [--runs N] [--perf]\n`);
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-profile-'));
const { sharedDir } = await import('../test/helpers/shared.js');
const model = await prepareModel(spec, work, sharedDir);
const graphFile = path.join(work, 'model.graph');
writeGraphFile(graphFile, model.graph);
const input = makeInput(model.inputShape, model.preprocessing, batch);
const inputFile = path.join(work, 'input.f32');
fs.writeFileSync(inputFile, Buffer.from(input.buffer));
const out: string[] = [];
const ms = (x: number): string => x.toFixed(3);
out.push(`## Profile: ${spec.id}, batch ${batch}, ${threads} thread(s), ${runs} runs, ${new Date().toISOString().slice(0, 16)}Z, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')}`, '');

// 1. Binding cost.
const { loadModel } = await import('../lib/model.js');
const m = await loadModel(model.modelJson, { threads });
const rt = await m.runtime(batch);
const outBuf = new Float32Array(rt.outputSize);
const exe = cppRunnerPath();
const sync: number[] = [];
const pred: number[] = [];
const cpp: number[] = [];
for (let i = 0; i < 5; i++) {
  rt.runSync(input, outBuf);
  await m.predict(input, { batch });
}
for (let round = 0; round < 5; round++) {
  for (let i = 0; i < runs / 5; i++) {
    const t0 = nowMs();
    rt.runSync(input, outBuf);
    sync.push(nowMs() - t0);
  }
  for (let i = 0; i < runs / 5; i++) {
    const t0 = nowMs();
    await m.predict(input, { batch });
    pred.push(nowMs() - t0);
  }
  if (exe !== null) {
    const r = spawnSync(exe, ['--graph', graphFile, '--input', inputFile, '--threads', String(threads), '--batch', String(batch), '--runs', String(Math.ceil(runs / 5)), '--warmup', '3', '--times'], { encoding: 'utf8' });
    const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { times_ms?: number[]; error?: string };
    if (j.times_ms) cpp.push(...j.times_ms);
  }
}
const medSync = quantile(sync, 0.5);
const medPred = quantile(pred, 0.5);
const medCpp = quantile(cpp, 0.5);
out.push('### Binding cost (medians, interleaved)', '');
out.push('| path | median ms | vs raw C++ |', '|---|---:|---:|');
if (cpp.length) out.push(`| raw C++ \`xnn_invoke_runtime\` | ${ms(medCpp)} | 1.000 |`);
out.push(`| \`Runtime.runSync\` (copy in, invoke, copy out; main thread) | ${ms(medSync)} | ${cpp.length ? (medSync / medCpp).toFixed(3) : '–'} |`);
out.push(`| \`Model.predict\` (checks, libuv worker, promise) | ${ms(medPred)} | ${cpp.length ? (medPred / medCpp).toFixed(3) : '–'} |`);
out.push('', `Async hop + argument checks: ${ms(medPred - medSync)} ms per call.`, '');
m.dispose();

// 2. XNNPACK per operator.
if (exe !== null) {
  const r = spawnSync(exe, ['--graph', graphFile, '--input', inputFile, '--threads', String(threads), '--batch', String(batch), '--runs', String(runs), '--warmup', '3', '--profile'], { encoding: 'utf8' });
  const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { profile_us?: Array<{ op: string; median: number }>; error?: string; median_ms?: number };
  out.push('### XNNPACK operators (raw C++ runner, XNN_FLAG_BASIC_PROFILING)', '');
  if (j.profile_us) {
    const byType = new Map<string, { us: number; n: number }>();
    for (const p of j.profile_us) {
      const e = byType.get(p.op) ?? { us: 0, n: 0 };
      e.us += p.median;
      e.n++;
      byType.set(p.op, e);
    }
    const total = [...byType.values()].reduce((a, b) => a + b.us, 0);
    out.push(`${j.profile_us.length} operators; sum of per-operator medians ${(total / 1000).toFixed(3)} ms (whole invoke median ${j.median_ms?.toFixed(3)} ms).`, '');
    out.push('| operator | count | time (ms) | share |', '|---|---:|---:|---:|');
    for (const [op, e] of [...byType].sort((a, b) => b[1].us - a[1].us)) {
      out.push(`| ${op} | ${e.n} | ${(e.us / 1000).toFixed(3)} | ${((100 * e.us) / total).toFixed(1)}% |`);
    }
  } else {
    out.push(`Not available: ${j.error ?? r.stderr.trim()}`);
  }
  out.push('');
}

// 3. onnxruntime-node's own profile.
{
  const ort = await import('onnxruntime-node');
  const onnxFile = path.join(work, 'model.onnx');
  fs.writeFileSync(onnxFile, exportOnnx(model.graph, { inputLayout: 'nchw' }));
  const session = await ort.InferenceSession.create(onnxFile, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
    enableProfiling: true, profileFilePrefix: path.join(work, 'ort'),
  });
  const [h, w, c] = model.inputShape as [number, number, number];
  const nchw = new Float32Array(input.length);
  for (let b = 0; b < batch; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) {
    nchw[((b * c + k) * h + y) * w + x] = input[((b * h + y) * w + x) * c + k] as number;
  }
  const feeds = { [session.inputNames[0] as string]: new ort.Tensor('float32', nchw, [batch, c, h, w]) };
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = nowMs();
    await session.run(feeds);
    times.push(nowMs() - t0);
  }
  session.endProfiling();
  await session.release();
  const file = fs.readdirSync(work).find((f) => f.startsWith('ort') && f.endsWith('.json'));
  out.push('### onnxruntime-node nodes (its profiler, after its graph optimizations)', '');
  if (file) {
    const events = JSON.parse(fs.readFileSync(path.join(work, file), 'utf8')) as Array<{ cat: string; name: string; dur: number; args?: { op_name?: string } }>;
    const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
    const byType = new Map<string, { us: number; n: number }>();
    const perNode = new Set<string>();
    for (const e of nodes) {
      const op = e.args?.op_name ?? '?';
      const b = byType.get(op) ?? { us: 0, n: 0 };
      b.us += e.dur;
      b.n++;
      byType.set(op, b);
      perNode.add(e.name);
    }
    const total = [...byType.values()].reduce((a, b) => a + b.us, 0);
    out.push(`${perNode.size} kernels per run (our graph has ${model.graph.nodes.length} nodes before ONNX lowering); run() median ${ms(quantile(times, 0.5))} ms.`, '');
    out.push('| op type | kernels per run | time per run (ms) | share |', '|---|---:|---:|---:|');
    for (const [op, b] of [...byType].sort((a, b) => b[1].us - a[1].us)) {
      out.push(`| ${op} | ${(b.n / runs).toFixed(0)} | ${(b.us / runs / 1000).toFixed(3)} | ${((100 * b.us) / total).toFixed(1)}% |`);
    }
  } else {
    out.push('No profile file written.');
  }
  out.push('');
}

// 4. perf.
if (values.perf && exe !== null) {
  const data = path.join(work, 'perf.data');
  const rec = spawnSync('perf', ['record', '-q', '-F', '2000', '-o', data, '--', exe, '--graph', graphFile, '--input', inputFile, '--threads', String(threads), '--batch', String(batch), '--runs', String(runs * 4), '--warmup', '0'], { encoding: 'utf8' });
  out.push('### perf: top symbols of the raw C++ runner', '');
  if (rec.status === 0) {
    const rep = spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', 'symbol', '--percent-limit', '1'], { encoding: 'utf8' });
    const lines = rep.stdout.split('\n').filter((l) => /^\s+\d/.test(l)).slice(0, 25);
    out.push('```', ...lines.map((l) => l.trim()), '```');
  } else {
    out.push(`perf record failed: ${rec.stderr.trim().split('\n')[0]}`);
  }
  out.push('');
}

fs.rmSync(work, { recursive: true, force: true });
model.graph.dispose();
process.stdout.write(out.join('\n') + '\n');
