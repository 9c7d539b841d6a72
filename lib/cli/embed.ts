/**
 * `mobilenet embed <file|dir|glob>... [options]`
 *
 * Prints the pooled feature vector of each image (the model cut at its global
 * pooling layer, see lib/embed.ts): one line per image, `--json` as
 * `{"file", "embedding": [...]}` (or `{"file", "error"}`), otherwise
 * `<file>\t<v1> <v2> …`. Inputs are expanded as `classify` does; a progress
 * bar goes to stderr when it is a TTY. Exit code 0 all embedded, 2 some
 * failed, 1 usage error.
 */
import { resolveWeights } from '../default-model.js';
import type { Architecture } from '../keras/types.js';
import { loadModel, type ModelOptions } from '../model.js';
import { expandInputs, errorText, Progress, write } from './classify.js';
import { UsageError } from '../errors.js';
import type { CliIO } from './io.js';
import { oneOf, parseCommandArgs, positiveInt, positiveNumber } from './options.js';

const HELP = `Usage: mobilenet embed <file|dir|glob>... [options]

Prints the embedding of each image: the model's pooled feature vector (cut at
its global pooling layer, whatever the head; a model without one gets a global
average pooling over its last feature map). One line per image.

Options:
  --weights <path>     model.json (or its directory), .h5 or .keras
                       (default: $MOBILENET_WEIGHTS, else the shipped MobileNet V1 0.75-224)
  --arch <a>           v1 | v2 | v3-small | v3-large (weights-only .h5 files)
  --alpha <A>          width multiplier (weights-only .h5 files)
  --normalize          scale each vector to unit L2 norm (cosine similarity = dot product)
  --resize <mode>      crop (default) | squash
  --batch <B>          images per inference call (default 8)
  --threads <N>        inference threads (default: all cores)
  --json               one JSON object per line: {"file", "embedding"} or {"file", "error"}
                       (default: <file><TAB><space-separated values>)
  -h, --help           this text

Exit code: 0 all images embedded, 2 some failed, 1 usage error.
`;

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    weights: { type: 'string' },
    arch: { type: 'string' },
    alpha: { type: 'string' },
    normalize: { type: 'boolean', default: false },
    resize: { type: 'string' },
    batch: { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`no images given\n\n${HELP}`);
  const arch = oneOf(values.arch, 'arch', ['v1', 'v2', 'v3-small', 'v3-large'] as const);
  const resize = oneOf(values.resize, 'resize', ['crop', 'squash'] as const);
  const batch = positiveInt(values.batch, 'batch') ?? 8;
  const threads = positiveInt(values.threads, 'threads');
  const alpha = positiveNumber(values.alpha, 'alpha');
  const weights = resolveWeights(values.weights, io.env, io.cwd);
  const inputs = await expandInputs(positionals, io.cwd);
  if (inputs.length === 0) {
    io.stderr.write('mobilenet embed: no image files found\n');
    return 2;
  }
  const modelOptions: ModelOptions = {};
  if (arch !== undefined) modelOptions.architecture = arch as Architecture;
  if (alpha !== undefined) modelOptions.alpha = alpha;
  if (threads !== undefined) modelOptions.threads = threads;
  const model = await loadModel(weights.path, modelOptions);
  try {
    const readable = inputs.filter((i) => i.error === undefined);
    const batchSize = Math.max(1, Math.min(batch, readable.length));
    const progress = io.stderr.isTTY === true ? new Progress(io.stderr, inputs.length, (io.stderr as { columns?: number }).columns ?? 80) : null;
    let stdoutFailed = false;
    const onStdoutError = (): void => {
      stdoutFailed = true;
    };
    io.stdout.on('error', onStdoutError);
    const isStdoutFailed = (): boolean => stdoutFailed;
    let failed = 0;
    const report = async (display: string, embedding: Float32Array | undefined, message: string): Promise<void> => {
      if (embedding === undefined) {
        failed++;
        progress?.clear();
        if (values.json) await write(io.stdout, `${JSON.stringify({ file: display, error: message })}\n`, isStdoutFailed);
        else await write(io.stderr, `${display}: error: ${message}\n`, () => false);
      } else {
        if (io.stdout.isTTY === true) progress?.clear();
        const line = values.json ? JSON.stringify({ file: display, embedding: Array.from(embedding) }) : `${display}\t${Array.from(embedding).join(' ')}`;
        await write(io.stdout, `${line}\n`, isStdoutFailed);
      }
      if (progress !== null) {
        progress.done++;
        if (embedding === undefined) progress.failed++;
        progress.tick(progress.done === inputs.length);
      }
    };
    for (const i of inputs) if (i.error !== undefined) await report(i.display, undefined, i.error);
    progress?.tick(true);
    if (readable.length > 0) {
      const options = { batchSize, normalize: values.normalize === true, ...(resize === undefined ? {} : { resize }) };
      for await (const r of model.embedBatch(
        readable.map((i) => i.path),
        options,
      )) {
        if (stdoutFailed) break;
        const input = readable[r.position]!;
        await report(input.display, r.embedding, r.embedding === undefined ? errorText(r.error, input.path) : '');
      }
    }
    progress?.clear();
    if (!stdoutFailed) io.stdout.off('error', onStdoutError);
    return failed > 0 ? 2 : 0;
  } finally {
    model.dispose();
  }
}
