/** Evaluation of a classifier: accuracy, per-class precision / recall, confusion matrix, as text. */

export interface ClassMetrics {
  className: string;
  precision: number;
  recall: number;
  /** True samples of this class. */
  support: number;
}

export interface Evaluation {
  samples: number;
  accuracy: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  classes: ClassMetrics[];
}

/** Evaluates n × k probabilities against true labels (arg-max, ties to the lower index). */
export function evaluateProbabilities(probs: Float32Array, labels: ArrayLike<number>, classNames: readonly string[]): Evaluation {
  const k = classNames.length;
  const n = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c]! > probs[i * k + best]!) best = c;
    const t = labels[i]!;
    confusion[t]![best]!++;
    if (best === t) correct++;
  }
  const classes = classNames.map((className, c) => {
    const tp = confusion[c]![c]!;
    const predicted = confusion.reduce((s, row) => s + row[c]!, 0);
    const support = confusion[c]!.reduce((s, x) => s + x, 0);
    return { className, precision: predicted === 0 ? 0 : tp / predicted, recall: support === 0 ? 0 : tp / support, support };
  });
  return { samples: n, accuracy: n === 0 ? 0 : correct / n, confusion, classes };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** Per-class table and confusion matrix, as `mobilenet train` prints them. */
export function formatEvaluation(e: Evaluation): string {
  const names = e.classes.map((c) => c.className);
  const w = Math.max(5, ...names.map((n) => n.length));
  const lines = [`accuracy ${pct(e.accuracy)} (${Math.round(e.accuracy * e.samples)}/${e.samples})`, ''];
  lines.push(`${'class'.padEnd(w)}  precision  recall  support`);
  for (const c of e.classes) lines.push(`${c.className.padEnd(w)}  ${pct(c.precision).padStart(9)}  ${pct(c.recall).padStart(6)}  ${String(c.support).padStart(7)}`);
  lines.push('', 'confusion matrix (rows: true class, columns: predicted)');
  const cw = Math.max(4, ...names.map((n) => n.length), ...e.confusion.flat().map((x) => String(x).length));
  lines.push(`${''.padEnd(w)}  ${names.map((n) => n.padStart(cw)).join(' ')}`);
  e.confusion.forEach((row, i) => lines.push(`${names[i]!.padEnd(w)}  ${row.map((x) => String(x).padStart(cw)).join(' ')}`));
  return lines.join('\n');
}
