/**
 * Writes a benchmark run as `bench/results/<date>-<host>.{json,md,svg}` and
 * refreshes `bench/results/latest.{json,md,svg}` (what the README links).
 * The chart is a Vega-Lite spec rendered to SVG in Node (no canvas).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BenchResults, ResultRow } from './lib/results.js';
import { classifyE2ETable } from './lib/classify-e2e.js';

const ENGINE_ORDER = ['mobilenet-xnnpack', 'mobilenet-xnnpack-int8', 'xnnpack-cpp', 'onnxruntime-node', 'onnxruntime-node-int8', 'tfjs-wasm', 'tfjs-cpu', 'reference-ts', 'tfjs-node'];
/** One fixed colour per engine (tableau10), so charts of different runs read alike. */
const ENGINE_COLORS = ['#4e79a7', '#76b7b2', '#f28e2b', '#e15759', '#b07aa1', '#59a14f', '#9c755f'];

function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (x >= 1000) return Math.round(x).toLocaleString('en-US');
  return Number(x.toPrecision(digits)).toString();
}

/** The engine's name with the configuration it was timed in, e.g. 'onnxruntime-node (default: intra-op spinning on, phase-isolated)'. */
export function engineLabel(row: { engine: string; setting?: string }): string {
  return row.setting ? `${row.engine} (${row.setting})` : row.engine;
}

function sortRows(rows: readonly ResultRow[], modelOrder: string[]): ResultRow[] {
  return [...rows].sort(
    (a, b) =>
      modelOrder.indexOf(a.model) - modelOrder.indexOf(b.model) ||
      a.batch - b.batch ||
      a.threads - b.threads ||
      ENGINE_ORDER.indexOf(a.engine) - ENGINE_ORDER.indexOf(b.engine),
  );
}

/** Batch-1 median latency (ms), one row per model, one column per engine and thread count. */
export function summaryTable(r: BenchResults): string[] {
  const modelOrder = r.models.map((x) => x.id);
  const b1 = r.results.filter((x) => x.batch === 1 && x.median_ms !== null);
  const threads = [...new Set(b1.map((x) => x.threads))].sort((a, b) => a - b);
  const cols: Array<{ engine: string; threads: number; setting?: string }> = [];
  for (const e of ENGINE_ORDER) {
    for (const t of threads) {
      const settings = [...new Set(b1.filter((x) => x.engine === e && x.threads === t).map((x) => x.setting ?? ''))];
      if (settings.length > 0) cols.push({ engine: e, threads: t, ...(settings.join('') === '' ? {} : { setting: settings.filter(Boolean).join(' / ') }) });
    }
  }
  if (cols.length === 0) return [];
  const lines = [
    `| batch-1 median ms | ${cols.map((c) => `${c.engine} ${c.threads}T${c.setting ? ` (${c.setting})` : ''}`).join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
  ];
  for (const m of modelOrder) {
    const cells = cols.map((c) => fmt(b1.find((x) => x.model === m && x.engine === c.engine && x.threads === c.threads)?.median_ms));
    lines.push(`| ${m} | ${cells.join(' | ')} |`);
  }
  return lines;
}

export function markdown(r: BenchResults, svgName?: string): string {
  const m = r.machine;
  const modelOrder = r.models.map((x) => x.id);
  for (const row of r.results) if (!modelOrder.includes(row.model)) modelOrder.push(row.model);
  const lines: string[] = [];
  lines.push(`### Benchmark ${r.mode === 'quick' ? '(quick)' : '(full)'} — ${r.date.slice(0, 16).replace('T', ' ')} UTC`);
  lines.push('');
  lines.push(`Machine: ${m.cpu}, ${m.cores} cores (${m.flags.join(', ') || 'no ISA flags read'}), ${m.memory_gb} GB, ${m.os}; Node.js ${m.node}; XNNPACK ${m.xnnpack}. Load average at start ${m.load_avg?.join(' / ') ?? '?'}, at end ${r.load_avg_end?.join(' / ') ?? '?'} (1/5/15 min; above 0 means other processes competed for the cores).`);
  const st = r.settings as Record<string, unknown>;
  const multi = st.schedule === 'interleaved'
    ? 'all-core rows interleaved too (every engine process alive; onnxruntime spinning off unless MOBILENET_BENCH_ORT_SPIN=1)'
    : 'all-core rows phase-isolated (each engine in its default configuration, its process the only engine process alive during its rounds)';
  lines.push(
    `Method: every engine in its own process, same input; ${String(st.rounds)} rounds, ${String(st.warmup)} warm-up runs; 1-thread rows interleaved (engines take turns each round), ${multi}; ` +
      `batch 1: ${String(st.runs_batch1)} runs (tfjs-cpu, reference-ts: ${String(st.runs_slow_engines)}), batch ${String(st.batch_n)}: ${String(st.runs_batch_n)} runs. ` +
      `Times are wall-clock per call as the user sees it (JS engines: promise resolved; xnnpack-cpp: \`xnn_invoke_runtime\` timed in C++). Run took ${r.duration_s} s.`,
  );
  lines.push('');
  const summary = summaryTable(r);
  if (summary.length > 0) lines.push(...summary, '');
  if (r.models.length > 0) {
    lines.push('| model | params | MACs | input |');
    lines.push('|---|---:|---:|---|');
    for (const x of r.models) lines.push(`| ${x.id} — ${x.label} | ${x.params.toLocaleString('en-US')} | ${(x.macs / 1e6).toFixed(0)}M | ${x.input.join('×')} |`);
    lines.push('');
  }
  lines.push('| model | engine | threads | batch | median ms | p90 ms | p99 ms | min ms | runs | images/s | load ms | load stall ms | load RSS growth MB (target) | peak RSS MB | max abs diff vs ours | note |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const row of sortRows(r.results, modelOrder)) {
    lines.push(
      `| ${row.model} | ${engineLabel(row)} | ${row.threads} | ${row.batch} | ${fmt(row.median_ms)} | ${fmt(row.p90_ms)} | ${fmt(row.p99_ms)} | ${fmt(row.min_ms)} | ${row.runs} | ${fmt(row.images_per_s)} | ${fmt(row.load_ms, 4)} | ${row.load_stall_ms ?? '–'} | ${row.rss_growth_mb === undefined ? '–' : `${row.rss_growth_mb} (${row.rss_growth_target_mb ?? '?'})`} | ${row.peak_rss_mb ?? '–'} | ${row.max_abs_diff === undefined ? '–' : row.max_abs_diff.toExponential(1)} | ${(row.error ? `**error:** ${row.error}` : '').replace(/\|/g, '/')} |`,
    );
  }
  lines.push('');
  if (r.classify_e2e !== undefined) lines.push(...classifyE2ETable(r.classify_e2e), '');
  if (r.targets.length > 0) {
    lines.push('Targets (ratios of batch-1 medians within this run):');
    lines.push('');
    lines.push('| model | threads | target | goal | measured | met | detail |');
    lines.push('|---|---:|---|---|---:|---|---|');
    for (const t of r.targets) {
      const value = t.value === null ? '–' : t.target.startsWith('binding') ? `${fmt(t.value)}%` : t.target.includes('stall') ? `${fmt(t.value)} ms` : t.target.includes('RSS') ? `${fmt(t.value)} MB` : `${fmt(t.value)}x`;
      lines.push(`| ${t.model} | ${t.threads} | ${t.target} | ${t.goal} | ${value} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**MISSED**'} | ${t.detail} |`);
    }
    lines.push('');
  }
  if (r.concurrency.length > 0) {
    lines.push('Latency under concurrent requests (batch 1, one model instance, closed loop):');
    lines.push('');
    lines.push('| model | engine | threads | concurrent | requests | median ms | p90 ms | p99 ms | images/s |');
    lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of r.concurrency) {
      lines.push(`| ${c.model} | ${engineLabel(c)} | ${c.threads} | ${c.concurrency} | ${c.requests} | ${fmt(c.median_ms)} | ${fmt(c.p90_ms)} | ${fmt(c.p99_ms)} | ${fmt(c.images_per_s)} |`);
    }
    lines.push('');
  }
  const notes = [...new Set(r.results.filter((x) => x.notes).map((x) => `${x.engine}: ${x.notes}`))];
  if (notes.length > 0) {
    lines.push('Engine notes:');
    lines.push('');
    for (const n of notes) lines.push(`- ${n}`);
    lines.push('');
  }
  if (svgName !== undefined) lines.push(`![batch-1 latency per engine and model (log scale)](${svgName})`, '');
  return lines.join('\n');
}

/** Vega-Lite spec: batch-1 median latency per engine per model, log scale, one panel per thread count. */
export function chartSpec(r: BenchResults): Record<string, unknown> {
  const data = r.results
    .filter((x) => x.batch === 1 && x.median_ms !== null && x.median_ms > 0)
    .map((x) => ({ model: x.model, engine: x.engine, threads: `${x.threads} thread${x.threads === 1 ? '' : 's'}${x.setting?.endsWith('phase-isolated') ? ' (phase-isolated, default settings)' : x.setting ? ' (interleaved)' : ''}`, median_ms: x.median_ms, p90_ms: x.p90_ms }));
  const engines = ENGINE_ORDER.filter((e) => data.some((d) => d.engine === e));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `MobileNet batch-1 latency on ${r.machine.cpu} (${r.machine.cores} cores), Node ${r.machine.node}`, fontSize: 13 },
    data: { values: data },
    facet: { column: { field: 'threads', type: 'nominal', title: null } },
    spec: {
      width: 380,
      height: { step: 11 },
      encoding: {
        y: { field: 'model', type: 'nominal', title: null, sort: r.models.map((m) => m.id) },
        yOffset: { field: 'engine', type: 'nominal', sort: engines },
        x: { field: 'median_ms', type: 'quantitative', scale: { type: 'log' }, stack: null, title: 'median latency, ms (log scale)' },
      },
      layer: [
        {
          mark: { type: 'bar', tooltip: true },
          encoding: {
            color: { field: 'engine', type: 'nominal', sort: engines, scale: { domain: engines, range: engines.map((e) => ENGINE_COLORS[ENGINE_ORDER.indexOf(e)]) }, legend: { orient: 'bottom', columns: 4, title: null } },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 2, fontSize: 8 },
          encoding: { text: { field: 'median_ms', type: 'quantitative', format: '.3~r' } },
        },
      ],
    },
    config: { font: 'sans-serif', view: { stroke: '#ddd' } },
  };
}

export async function renderSvg(r: BenchResults): Promise<string> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  const compiled = vl.compile(chartSpec(r) as unknown as Parameters<typeof vl.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function writeReports(r: BenchResults, outDir: string): Promise<{ json: string; md: string; svg: string }> {
  fs.mkdirSync(outDir, { recursive: true });
  const host = r.machine.host.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40) || 'host';
  const base = `${r.date.slice(0, 10)}-${host}${r.mode === 'quick' ? '-quick' : ''}`;
  const json = path.join(outDir, `${base}.json`);
  const md = path.join(outDir, `${base}.md`);
  const svg = path.join(outDir, `${base}.svg`);
  fs.writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  let svgText: string;
  try {
    svgText = await renderSvg(r);
  } catch (e) {
    svgText = `<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40"><text x="10" y="25">chart failed: ${String((e as Error).message).replace(/[<&]/g, '')}</text></svg>`;
  }
  fs.writeFileSync(svg, svgText);
  fs.writeFileSync(md, markdown(r, path.basename(svg)));
  for (const [src, ext] of [[json, 'json'], [md, 'md'], [svg, 'svg']] as const) {
    const latest = path.join(outDir, `latest${r.mode === 'quick' ? '-quick' : ''}.${ext}`);
    if (ext === 'md') fs.writeFileSync(latest, markdown(r, `latest${r.mode === 'quick' ? '-quick' : ''}.svg`));
    else fs.copyFileSync(src, latest);
  }
  return { json, md, svg };
}
