/**
 * Comparing classifier outputs (softmax probabilities) at the logit level.
 *
 * An absolute tolerance on probabilities cannot fail where it matters: of
 * 1,000 ImageNet probabilities most are below 1e-4, so "every probability
 * within 1e-4" accepts any error in those classes' logits. Two probability
 * vectors from the same logits up to a constant have equal log-probabilities
 * (log p_i = z_i - logsumexp(z)), so |log p - log q| is the logit error of
 * each class (plus one shared shift), whatever the size of p. We compare:
 * - the log-probabilities of every class (`maxLogDiff`), and
 * - the relative error of the reference's top-k probabilities (`topRelDiff`),
 *   the numbers users read.
 *
 * Measured (x86-64, load ~10): XNNPACK vs the TF.js wasm reference outputs of
 * ../shared/reference, 9 images: max |Δ log p| 6.8e-5 (0.75) and 6.5e-5 (0.25),
 * top-5 relative 3.1e-5 / 4.1e-5; the reference backend 3.4e-5 / 2.9e-5.
 * `LOG_PROB_TOL` = 3e-4 leaves room for other CPUs' kernels (FMA, ARM NEON)
 * and still fails when one logit (one bias) is off by 1e-3: test it with
 * `shiftLogit`.
 */

/** Tolerance on |log p - log q| and on the top-k relative error, float32 model vs float32 model. */
export const LOG_PROB_TOL = 3e-4;

export interface ProbDiff {
  /** max over classes of |log ours - log theirs| (0 where both are exactly 0, Infinity where only one is). */
  maxLogDiff: number;
  /** the class where that maximum is reached */
  worstClass: number;
  /** max over the reference's top-k classes of |ours - theirs| / theirs */
  topRelDiff: number;
  /** max |ours - theirs|, only for the log line */
  maxAbsDiff: number;
}

function logDiff(p: number, q: number): number {
  if (p === q) return 0;
  if (!(p > 0) || !(q > 0)) return Infinity;
  return Math.abs(Math.log(p) - Math.log(q));
}

/** The reference's k most probable classes, highest first (ties: lower index first). */
export function topK(p: ArrayLike<number>, k: number, from = 0, n = p.length - from): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => (p[from + b] as number) - (p[from + a] as number) || a - b);
  return idx.slice(0, k);
}

/**
 * Compares `n` probabilities of `ours` starting at `oursFrom` with `theirs`
 * (same length `n`, starting at `theirsFrom`).
 */
export function compareProbs(
  ours: ArrayLike<number>,
  theirs: ArrayLike<number>,
  opts: { k?: number; oursFrom?: number; theirsFrom?: number; n?: number } = {},
): ProbDiff {
  const oursFrom = opts.oursFrom ?? 0;
  const theirsFrom = opts.theirsFrom ?? 0;
  const n = opts.n ?? theirs.length - theirsFrom;
  if (oursFrom + n > ours.length || theirsFrom + n > theirs.length) throw new RangeError(`compareProbs: ${n} values do not fit (ours ${ours.length}, theirs ${theirs.length})`);
  let maxLogDiff = 0;
  let worstClass = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < n; i++) {
    const p = ours[oursFrom + i] as number;
    const q = theirs[theirsFrom + i] as number;
    const d = logDiff(p, q);
    if (d > maxLogDiff || Number.isNaN(d)) {
      maxLogDiff = d;
      worstClass = i;
    }
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(p - q));
  }
  let topRelDiff = 0;
  for (const c of topK(theirs, Math.min(opts.k ?? 5, n), theirsFrom, n)) {
    const q = theirs[theirsFrom + c] as number;
    topRelDiff = Math.max(topRelDiff, Math.abs((ours[oursFrom + c] as number) - q) / q);
  }
  return { maxLogDiff, worstClass, topRelDiff, maxAbsDiff };
}

/** One line for the test log. */
export function formatProbDiff(d: ProbDiff): string {
  return `max |Δ log p| ${d.maxLogDiff.toExponential(2)} (class ${d.worstClass}), top-k relative ${d.topRelDiff.toExponential(2)}, max |Δp| ${d.maxAbsDiff.toExponential(2)}`;
}

/** True when both measures are within `tol`. */
export function probsClose(d: ProbDiff, tol = LOG_PROB_TOL): boolean {
  return d.maxLogDiff <= tol && d.topRelDiff <= tol;
}

/**
 * `p` with the logit of class `cls` shifted by `delta` (what a bias off by
 * `delta` does to a softmax output): softmax(log p + delta e_cls). Tests use
 * it to show that their tolerance catches such an error.
 */
export function shiftLogit(p: ArrayLike<number>, cls: number, delta: number): Float64Array {
  const out = Float64Array.from(p as ArrayLike<number>);
  out[cls] = (out[cls] as number) * Math.exp(delta);
  let sum = 0;
  for (const v of out) sum += v;
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}
