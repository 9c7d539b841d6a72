/**
 * What a `mobilenet` subcommand talks to: its output streams, environment
 * and working directory (the real process in bin/mobilenet.js, in-memory
 * streams in tests). Each subcommand module exports a `Command`.
 */
import type { Env } from '../env.js';

export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Optional: standard input, for `-` as a file name (default: process.stdin). */
  stdin?: NodeJS.ReadableStream;
  env: Env;
  cwd: string;
}

/** `run(args, io)` resolves to the exit code: 0 success, 1 usage error, 2 some inputs failed. */
export type Command = (args: string[], io: CliIO) => Promise<number>;
