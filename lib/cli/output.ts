/**
 * Output helpers of the commands that stream results (classify, embed):
 * backpressure-aware writes, stdout failure handling, a TTY progress bar,
 * the end-of-run summary line, and escaping of names printed for humans.
 */
import { ImageDecodeError } from '../errors.js';
import type { CliIO } from './io.js';

/**
 * Control characters (C0, DEL, C1) in a name printed for a human, as `\xNN`:
 * a file name must not be able to move the cursor, recolour or retitle the
 * terminal. (JSON output escapes C0 itself; this is for the text output.)
 */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** An error's message without the file name it starts with (the caller prints the name). */
export function errorText(e: Error | undefined, file: string): string {
  if (e === undefined) return 'unknown error';
  let msg = e.message;
  if (e instanceof ImageDecodeError && e.file !== undefined && msg.startsWith(`${e.file}: `)) msg = msg.slice(e.file.length + 2);
  else if (msg.startsWith(`${file}: `)) msg = msg.slice(file.length + 2);
  return msg;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A one-line progress bar on a TTY stream: count, rate, ETA. */
export class Progress {
  private readonly start = performance.now();
  private last = 0;
  private shown = false;
  done = 0;
  failed = 0;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly total: number,
    private readonly width: number,
  ) {}

  line(): string {
    const elapsed = (performance.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const frac = this.total > 0 ? this.done / this.total : 1;
    const barWidth = Math.max(10, Math.min(30, this.width - 60));
    const filled = Math.round(frac * barWidth);
    const bar = '='.repeat(filled) + (filled < barWidth ? '>' : '') + ' '.repeat(Math.max(0, barWidth - filled - 1));
    const failed = this.failed > 0 ? ` ${this.failed} failed` : '';
    return `[${bar}] ${this.done}/${this.total} ${(frac * 100).toFixed(0)}% ${rate.toFixed(1)} img/s ETA ${formatDuration(eta)}${failed}`;
  }

  tick(force = false): void {
    const now = performance.now();
    // Redraw at most every 100 ms, but at once after the line was cleared for other output.
    if (!force && this.shown && now - this.last < 100) return;
    this.last = now;
    this.stream.write(`\r${this.line()}\x1b[K`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }
}

/** A progress bar of `total` items on stderr when it is a TTY, else null. */
export function progressFor(io: CliIO, total: number): Progress | null {
  return io.stderr.isTTY === true ? new Progress(io.stderr, total, (io.stderr as { columns?: number }).columns ?? 80) : null;
}

/**
 * Writes and waits for 'drain' when the stream buffers (bounded memory for
 * huge runs). Resolves at once when the stream has failed.
 */
export function write(stream: NodeJS.WritableStream, text: string, failed: () => boolean): Promise<void> | undefined {
  if (failed()) return undefined;
  if (stream.write(text)) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('error', done);
    stream.once('close', done);
  });
}

/**
 * Watches stdout for write errors. EPIPE (the reader went away, e.g.
 * `| head -1`) is a quiet stop; any other error (ENOSPC on /dev/full, EIO…)
 * means results were lost: the command reports it and exits 1.
 */
export class OutputWatch {
  private error: (Error & { code?: string }) | null = null;
  private readonly onError = (e: Error & { code?: string }): void => {
    if (this.error === null) this.error = e;
  };

  /** False for a caller's own minimal writable (a `write` function, no events): nothing to watch or flush. */
  private readonly watching: boolean;

  constructor(private readonly stream: NodeJS.WritableStream) {
    this.watching = typeof stream.on === 'function' && typeof stream.off === 'function';
    if (this.watching) stream.on('error', this.onError);
  }

  /** True once any write failed: stop producing output. */
  get failed(): boolean {
    return this.error !== null;
  }

  /** The reader went away: stop quietly. */
  get brokenPipe(): boolean {
    return this.error?.code === 'EPIPE';
  }

  /** The error to report (not EPIPE), or null. */
  get lost(): (Error & { code?: string }) | null {
    return this.error !== null && !this.brokenPipe ? this.error : null;
  }

  /** Waits until everything written was flushed (or failed), so a late write error is seen. */
  async flush(): Promise<void> {
    if (this.failed || !this.watching) return;
    await new Promise<void>((resolve) => {
      const s = this.stream as NodeJS.WritableStream & { writableNeedDrain?: boolean; writableLength?: number };
      // An empty write's callback runs after every earlier write has completed (or failed).
      try {
        s.write('', () => resolve());
      } catch {
        resolve();
      }
    });
  }

  /** Stops watching, except after a failure: a late 'error' must not crash the process. */
  dispose(): void {
    if (this.watching && !this.failed) this.stream.off('error', this.onError);
  }
}

/** "ENOSPC: no space left on device" (Node's own messages of fs errors already start with the code). */
export function writeErrorText(e: Error & { code?: string }): string {
  return e.code === undefined || e.message.startsWith(`${e.code}:`) ? e.message : `${e.code}: ${e.message}`;
}

/** "250 images, 1 error, 152.3 images/s (1.64 s)" */
export function summaryLine(images: number, errors: number, seconds: number): string {
  const rate = seconds > 0 ? images / seconds : 0;
  return `${images} image${images === 1 ? '' : 's'}, ${errors} error${errors === 1 ? '' : 's'}, ${rate.toFixed(1)} images/s (${seconds.toFixed(2)} s)`;
}
