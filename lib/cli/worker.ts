/**
 * `mobilenet worker --redis <url> --queue <name> [options]`: consumes
 * classification jobs from a BullMQ queue (lib/server/worker.ts) until
 * SIGTERM or SIGINT, then finishes its active jobs and exits 0.
 */
import sharp from 'sharp';
import { resolveWeights } from '../default-model.js';
import { UsageError } from '../errors.js';
import { DEFAULT_SERVER_MAX_PIXELS } from '../limits.js';
import { startWorker } from '../server/worker.js';
import { untilSignal, type CliIO } from './io.js';
import { builderFlags, builderSection, loadModelWithFlags, nonNegativeInt, parseBuilderFlags, parseCommandArgs, positiveInt } from './options.js';

const HELP = `Usage: mobilenet worker --redis <url> --queue <name> [options]

Classifies images from a BullMQ queue on Redis; run any number of workers,
on any number of machines, on one queue. Job data: { "image": "<base64>" }
or { "path": "<file>" }, optional "top"; the result stored on the job is
{ "model", "predictions" }. Bad images fail their job without retries; a
worker that dies loses nothing (its jobs are taken over once their lock expires).

Options:
  --redis <url>             redis://host:port (required)
  --queue <name>            queue name (required)
  --weights <path>          model.json (or its directory), .h5 or .keras
                            (default: $MOBILENET_WEIGHTS, else the shipped MobileNet V1 0.75-224)
  --threads <N>             inference threads (default: all cores)
  --jobs <J>                jobs processed at once (default 2 × max batch)
  --max-batch <B>           largest micro-batch (default 8)
  --max-wait-ms <T>         longest wait for a batch to fill, ms (default 5)
  --concurrency <C>         images decoded at once (default: all cores)
  --max-pixels <P>          largest image in pixels (default ${DEFAULT_SERVER_MAX_PIXELS})
  --allow-svg               accept SVG images (refused by default)
  --root <dir>              'path' jobs must name files inside this directory
  --lock-ms <ms>            job lock duration: a dead worker's jobs move on after it (default 30000)
  --name <name>             worker name stored on jobs (default host:pid)
  --labels <file>           class names for fine-tuned models
  -h, --help                this text
${builderSection()}
`;


export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    redis: { type: 'string' },
    queue: { type: 'string' },
    weights: { type: 'string' },
    ...builderFlags(),
    threads: { type: 'string' },
    jobs: { type: 'string' },
    'max-batch': { type: 'string' },
    'max-wait-ms': { type: 'string' },
    concurrency: { type: 'string' },
    'max-pixels': { type: 'string' },
    'allow-svg': { type: 'boolean' },
    root: { type: 'string' },
    'lock-ms': { type: 'string' },
    name: { type: 'string' },
    labels: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (values.redis === undefined) throw new UsageError('--redis <url> is required (e.g. redis://127.0.0.1:6379)');
  if (!/^rediss?:\/\//.test(values.redis)) throw new UsageError(`Expected redis:// URL for --redis but received ${JSON.stringify(values.redis)}`);
  if (values.queue === undefined || values.queue === '') throw new UsageError('--queue <name> is required');
  const request = parseBuilderFlags(values as Record<string, string | boolean | undefined>);
  const threads = positiveInt(values.threads, 'threads');
  const options = {
    redis: values.redis,
    queue: values.queue,
    jobs: positiveInt(values.jobs, 'jobs'),
    maxBatch: positiveInt(values['max-batch'], 'max-batch'),
    maxWaitMs: nonNegativeInt(values['max-wait-ms'], 'max-wait-ms'),
    concurrency: positiveInt(values.concurrency, 'concurrency'),
    maxPixels: positiveInt(values['max-pixels'], 'max-pixels'),
    allowSvg: values['allow-svg'] ?? false,
    root: values.root === undefined ? undefined : values.root,
    lockMs: positiveInt(values['lock-ms'], 'lock-ms'),
    name: values.name,
    labels: values.labels,
  };
  if (!options.allowSvg) sharp.block({ operation: ['VipsForeignLoadSvg'] });

  const weights = resolveWeights(values.weights, io.env, io.cwd);
  const model = await loadModelWithFlags(weights.path, request, threads === undefined ? {} : { threads });
  try {
    const running = await startWorker(model, options);
    io.stdout.write(`mobilenet worker: consuming queue '${options.queue}' (${model.name}, ${running.worker.opts.concurrency} jobs at once, pid ${process.pid})\n`);
    await untilSignal(io, 'worker', 'finishing active jobs', () => running.close());
    io.stdout.write('mobilenet worker: closed\n');
    return 0;
  } finally {
    model.dispose();
  }
}
