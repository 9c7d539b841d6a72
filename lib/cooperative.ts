/**
 * Long computations on the JavaScript thread that must not stall the event
 * loop (loading a model: decoding weights, lowering, serializing). Each is
 * written once, as a generator that `yield`s at points where a little work
 * (well under a millisecond to a few milliseconds) has been done since the
 * last one; `runSteps` drains it in one go (the synchronous APIs),
 * `runStepsAsync` gives the event loop a turn (`setImmediate`: timers and I/O
 * run) whenever a time slice is used up, so the longest stall stays around
 * the slice. Written here rather than with a worker thread: the steps work
 * on the caller's objects (weights, graphs) that a worker would have to copy.
 */

/** A computation in steps: yields between steps, returns the result. */
export type Steps<T> = Generator<void, T, void>;

/** Longest run of steps between two turns of the event loop (ms). */
export const SLICE_MS = 4;

/** Elements a numeric loop processes between two yields. */
export const CHUNK = 1 << 15;

/** Runs every step now. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Runs the steps, giving the event loop a turn after every `sliceMs` of work. */
export async function runStepsAsync<T>(steps: Steps<T>, sliceMs = SLICE_MS): Promise<T> {
  let start = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    const now = performance.now();
    if (now - start >= sliceMs) {
      await turn();
      start = performance.now();
    }
  }
}

/** Gives the event loop a turn (between two long phases that are not steps). */
export function yieldToEventLoop(): Promise<void> {
  return turn();
}

/**
 * A zeroed Float32Array of `n` values whose memory is touched in `CHUNK`
 * pieces with a step between them: the first write to fresh memory costs a
 * page fault per 4 KiB, which for a whole weight tensor written out of order
 * (a transpose) would all land in one step.
 */
export function* float32ArraySteps(n: number): Steps<Float32Array> {
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += CHUNK) {
    out.fill(0, start, Math.min(n, start + CHUNK));
    yield;
  }
  return out;
}

/** Copies `src` into `dst` at `offset` in `CHUNK`-byte pieces with a step between them. */
export function* copySteps(dst: Uint8Array, src: Uint8Array, offset: number): Steps<void> {
  for (let start = 0; start < src.byteLength; start += 4 * CHUNK) {
    dst.set(src.subarray(start, Math.min(src.byteLength, start + 4 * CHUNK)), offset + start);
    yield;
  }
}
