/**
 * Temporary files removed when the process is interrupted.
 *
 * Downloads write `.part` files and `.keras` loads a temporary
 * `model.weights.h5`; both are removed by their own `finally` blocks, but
 * SIGINT or SIGTERM end the process without running them. While at least
 * one temporary path is registered, a SIGINT/SIGTERM handler removes every
 * registered path synchronously; when no other handler is listening it then
 * re-raises the signal so the process ends as it would have (exit status
 * 128 + signal). With other handlers present (an application that handles
 * SIGINT itself) it only removes the files and leaves the decision to them.
 */
import fs from 'node:fs';

const paths = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let installed = false;

function onSignal(signal: NodeJS.Signals): void {
  removeAllNow();
  uninstall();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

/** Removes every registered path now (synchronously). */
export function removeAllNow(): void {
  for (const p of paths) {
    try {
      fs.rmSync(p, { recursive: true, force: true });
    } catch {
      // best effort: the process is going away
    }
  }
  paths.clear();
}

/** Registers a path to remove on SIGINT/SIGTERM; returns the function that unregisters it. */
export function removeOnSignal(p: string): () => void {
  paths.add(p);
  install();
  return () => {
    paths.delete(p);
    if (paths.size === 0) uninstall();
  };
}

/** Paths registered now (for tests). */
export function pendingCleanup(): string[] {
  return [...paths];
}
