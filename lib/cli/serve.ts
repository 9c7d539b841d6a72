/**
 * `mobilenet serve [options]`: the HTTP classification service
 * (lib/server/app.ts) until SIGTERM or SIGINT, then a graceful shutdown:
 * stop accepting, answer every accepted request, exit 0.
 */
import sharp from 'sharp';
import { resolveWeights } from '../default-model.js';
import { DEFAULT_SERVER_MAX_BODY, DEFAULT_SERVER_MAX_PIXELS } from '../limits.js';
import { createServer } from '../server/app.js';
import * as v from '../validate.js';
import { UsageError } from '../errors.js';
import { untilSignal, type CliIO } from './io.js';
import { builderFlags, builderSection, loadModelWithFlags, nonNegativeInt, parseBuilderFlags, parseCommandArgs, positiveInt } from './options.js';

const HELP = `Usage: mobilenet serve [options]

An HTTP classification service: POST /v1/classify (raw image body with an
image content type, or multipart 'image' parts; ?top=K), GET /v1/models,
GET /healthz, GET /readyz, GET /metrics (Prometheus), GET / (a demo page).

Options:
  --weights <path>          model.json (or its directory), .h5 or .keras
                            (default: $MOBILENET_WEIGHTS, else the shipped MobileNet V1 0.75-224)
  --host <h>                address to listen on (default 127.0.0.1)
  --port <p>                port (default 8080; 0 picks a free one)
  --threads <N>             inference threads (default: all cores)
  --max-batch <B>           largest micro-batch (default 8; 1 turns batching off)
  --max-wait-ms <T>         longest wait for a batch to fill, ms (default 5; 0 = never wait)
  --max-queue <Q>           images in flight before 503 + Retry-After (default 256)
  --concurrency <C>         images decoded at once (default: all cores)
  --max-body <size>         largest body or uploaded file, e.g. 10mb, 512kb (default ${DEFAULT_SERVER_MAX_BODY / 1024 / 1024}mb)
  --max-files <F>           most images in one multipart request (default 16)
  --max-pixels <P>          largest image in pixels (default ${DEFAULT_SERVER_MAX_PIXELS})
  --max-event-loop-delay <ms>  answer 503 while the event loop lags more than this (default 1000; 0 = off)
  --allow-svg               accept SVG uploads (refused by default: an SVG can reference other files)
  --labels <file>           class names for fine-tuned models
  -h, --help                this text
${builderSection()}
`;

/** "10mb", "512kb", "1gb" or a number of bytes (binary units). */
export function parseSize(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?\s*$/i.exec(value);
  const unit = (m?.[2] ?? 'b').toLowerCase()[0]!;
  const n = m === null ? NaN : Math.floor(Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1));
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(v.message('size such as 10mb, 512kb or a number of bytes', `--${name}`, value));
  return n;
}


export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    weights: { type: 'string' },
    ...builderFlags(),
    host: { type: 'string' },
    port: { type: 'string' },
    threads: { type: 'string' },
    'max-batch': { type: 'string' },
    'max-wait-ms': { type: 'string' },
    'max-queue': { type: 'string' },
    concurrency: { type: 'string' },
    'max-body': { type: 'string' },
    'max-files': { type: 'string' },
    'max-pixels': { type: 'string' },
    'max-event-loop-delay': { type: 'string' },
    'allow-svg': { type: 'boolean' },
    labels: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const port = nonNegativeInt(values.port, 'port') ?? 8080;
  if (port > 65535) throw new UsageError(v.message('port number 0..65535', '--port', values.port));
  const host = values.host ?? '127.0.0.1';
  const request = parseBuilderFlags(values as Record<string, string | boolean | undefined>);
  const threads = positiveInt(values.threads, 'threads');
  const serverOptions = {
    maxBatch: positiveInt(values['max-batch'], 'max-batch'),
    maxWaitMs: nonNegativeInt(values['max-wait-ms'], 'max-wait-ms'),
    maxQueue: positiveInt(values['max-queue'], 'max-queue'),
    concurrency: positiveInt(values.concurrency, 'concurrency'),
    maxBody: parseSize(values['max-body'], 'max-body'),
    maxFiles: positiveInt(values['max-files'], 'max-files'),
    maxPixels: positiveInt(values['max-pixels'], 'max-pixels'),
    allowSvg: values['allow-svg'] ?? false,
    labels: values.labels,
    maxEventLoopDelay: nonNegativeInt(values['max-event-loop-delay'], 'max-event-loop-delay'),
  };
  // Defence in depth: with SVG refused, libvips' SVG loader is blocked in this process.
  if (!serverOptions.allowSvg) sharp.block({ operation: ['VipsForeignLoadSvg'] });

  const weights = resolveWeights(values.weights, io.env, io.cwd);
  const model = await loadModelWithFlags(weights.path, request, threads === undefined ? {} : { threads });
  try {
    const service = await createServer(model, serverOptions);
    await service.warmUp();
    const address = await service.app.listen({ host, port });
    io.stdout.write(
      `mobilenet serve: listening on ${address} (${model.name}, max batch ${service.classifier.batcher.maxBatch}, ` +
        `max wait ${service.classifier.batcher.maxWaitMs} ms, pid ${process.pid})\n`,
    );
    await untilSignal(io, 'serve', 'finishing accepted requests', () => service.close());
    io.stdout.write('mobilenet serve: closed\n');
    return 0;
  } finally {
    model.dispose();
  }
}
