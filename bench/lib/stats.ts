/** Order statistics of timing samples (milliseconds). */

/** Linear-interpolated quantile (q in [0, 1]) of unsorted samples; NaN when empty. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const s = [...samples].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
}

export interface Summary {
  median_ms: number;
  p90_ms: number;
  p99_ms: number;
  min_ms: number;
  runs: number;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    median_ms: round(quantile(samples, 0.5)),
    p90_ms: round(quantile(samples, 0.9)),
    p99_ms: round(quantile(samples, 0.99)),
    min_ms: round(samples.length ? Math.min(...samples) : Number.NaN),
    runs: samples.length,
  };
}

/** Three significant decimals for ms values, more below 1 ms. */
export function round(x: number, digits = 4): number {
  if (!Number.isFinite(x)) return x;
  return Number(x.toPrecision(digits));
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
