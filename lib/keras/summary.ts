/**
 * A text summary in the style of Keras's `model.summary()`: one row per layer
 * (name and class, output shape with the batch as None, parameter count,
 * multiply-adds, and the inbound layers when the model is not a plain
 * chain), then the totals.
 */
import type { AnalyzedLayer, ModelAnalysis } from './types.js';

/** 4253864 → "4,253,864". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 568740352 → "569M", 41030272 → "41.0M", 1234 → "1.2K". */
export function formatMacs(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** [112, 112, 32] → "(None, 112, 112, 32)". */
export function formatShape(shape: readonly number[]): string {
  return `(None, ${shape.join(', ')})`;
}

function isChain(layers: readonly AnalyzedLayer[]): boolean {
  return layers.every((l, i) => (i === 0 ? l.inbound.length === 0 : l.inbound.length === 1 && l.inbound[0] === layers[i - 1]?.name));
}

function truncate(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, Math.max(width - 1, 1))}…`;
}

export interface SummaryOptions {
  /** Maximum width of the name column (default 72). */
  nameWidth?: number;
}

export function formatSummary(analysis: ModelAnalysis, options: SummaryOptions = {}): string {
  const chain = isChain(analysis.layers);
  const headers = ['Layer (type)', 'Output Shape', 'Param #', 'MACs', ...(chain ? [] : ['Connected to'])];
  const rows = analysis.layers.map((l) => {
    const shape = l.className === 'InputLayer' ? `[${formatShape(l.outputShape)}]` : formatShape(l.outputShape);
    return [
      truncate(`${l.name} (${l.className})`, options.nameWidth ?? 72),
      shape,
      formatCount(l.params),
      l.macs === 0 ? '0' : formatCount(l.macs),
      ...(chain ? [] : [l.inbound.join(', ')]),
    ];
  });
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]): string =>
    ` ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] as number) + 2))).join('')}`.trimEnd();
  const width = widths.reduce((a, b) => a + b + 2, 1);
  const out: string[] = [];
  out.push(`Model: "${analysis.name}"`);
  out.push('_'.repeat(width));
  out.push(line(headers));
  out.push('='.repeat(width));
  rows.forEach((r, i) => {
    out.push(line(r));
    if (i < rows.length - 1) out.push('');
  });
  out.push('='.repeat(width));
  out.push(`Total params: ${formatCount(analysis.totalParams)}`);
  out.push(`Trainable params: ${formatCount(analysis.trainableParams)}`);
  out.push(`Non-trainable params: ${formatCount(analysis.nonTrainableParams)}`);
  out.push(`Multiply-adds: ${formatCount(analysis.macs)} (${formatMacs(analysis.macs)})`);
  out.push('_'.repeat(width));
  return `${out.join('\n')}\n`;
}
