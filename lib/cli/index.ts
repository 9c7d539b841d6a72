/**
 * `mobilenet` command line. Each subcommand lives in its own module under
 * `lib/cli/` and exports `run(args, io): Promise<number>` (the exit code:
 * 0 success, 1 usage error, 2 some inputs failed).
 */
import { createRequire } from 'node:module';
import { UsageError } from '../errors.js';
import type { CliIO, Command } from './io.js';
import { OutputWatch, writeErrorText } from './output.js';

export type { CliIO, Command } from './io.js';

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  info: { summary: 'print architecture, parameters, multiply-adds and shapes', load: async () => (await import('./info.js')).run },
  classify: { summary: 'classify images, files, directories or globs', load: async () => (await import('./classify.js')).run },
  convert: { summary: 'convert weights among tfjs, h5 and keras formats', load: async () => (await import('./convert.js')).run },
  download: { summary: 'download official Keras Applications weights', load: async () => (await import('./download.js')).run },
  embed: { summary: 'print image embeddings (pooled feature vectors)', load: async () => (await import('./embed.js')).run },
  train: { summary: 'train a classifier for your own classes (a folder per class)', load: async () => (await import('./train.js')).run },
  worker: { summary: 'classify images from a BullMQ queue on Redis (scale-out)', load: async () => (await import('./worker.js')).run },
  serve: { summary: 'HTTP classification service (micro-batching, metrics, demo page)', load: async () => (await import('./serve.js')).run },
  quantize: { summary: 'quantize a model to int8 with calibration images', load: async () => (await import('./quantize.js')).run },
};

function usage(): string {
  const lines = ['Usage: mobilenet <command> [options]', '', 'Commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Options:', '  --version  print the package and XNNPACK versions', '  --help     this text', '', 'Run `mobilenet <command> --help` for a command\'s options.');
  return lines.join('\n') + '\n';
}

/** Also printed by scripts/build-native.mjs after a build against Debian's XNNPACK. */
const SYSTEM_XNNPACK_WARNING =
  "WARNING: built against Debian's 2022 XNNPACK (libxnnpack-dev), not the pinned one: measured 1.3x slower at 1 thread " +
  'and 2-4x slower at 2 threads. Rebuild with the pinned XNNPACK for full speed (npm rebuild mobilenet-xnnpack --build-from-source ' +
  'with network access to github.com, or MOBILENET_XNNPACK_ARCHIVES=<dir with the pinned archives>).';

async function versionText(): Promise<string> {
  const require = createRequire(import.meta.url);
  const pkg = require('../../package.json') as { version: string };
  let xnn = 'XNNPACK: native addon not loaded';
  try {
    const { xnnpackInfo } = await import('../binding.js');
    const info = xnnpackInfo();
    xnn = `XNNPACK: ${info.source}${info.commit ? ` ${info.commit}` : ''}${info.version ? ` (${info.version})` : ''}\naddon: ${info.binary} ${info.path}`;
    if (info.source === 'system') xnn += `\n${SYSTEM_XNNPACK_WARNING}`;
  } catch (e) {
    xnn = `XNNPACK: unavailable (${(e as Error).message})`;
  }
  return `mobilenet-xnnpack ${pkg.version}\n${xnn}\nNode.js ${process.version}\n`;
}

/**
 * Runs one command line. A stdout that fails is never an uncaught 'error'
 * event: a reader that went away (EPIPE, `| head`) is a quiet stop with the
 * command's exit code; any other failure (`> /dev/full`) of a command that
 * would have exited 0 is reported and exits 1 (classify and embed report
 * their own, lib/cli/output.ts).
 */
export async function main(argv: string[], io: CliIO): Promise<number> {
  const out = new OutputWatch(io.stdout);
  const code = await dispatch(argv, io);
  await out.flush();
  out.dispose();
  if (code === 0 && out.lost !== null) {
    const name = argv[0] !== undefined && commands[argv[0]] !== undefined ? ` ${argv[0]}` : '';
    io.stderr.write(`mobilenet${name}: cannot write to standard output (${writeErrorText(out.lost)}); output was lost\n`);
    return 1;
  }
  return code;
}

async function dispatch(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage());
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    io.stdout.write(await versionText());
    return 0;
  }
  const cmd = commands[name];
  if (cmd === undefined) {
    io.stderr.write(`mobilenet: unknown command '${name}'\n\n${usage()}`);
    return 1;
  }
  try {
    return await (await cmd.load())(rest, io);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`mobilenet ${name}: ${(e as Error).message}\n`);
      return 1;
    }
    io.stderr.write(`mobilenet ${name}: ${(e as Error).name}: ${(e as Error).message}\n`);
    return 1;
  }
}
