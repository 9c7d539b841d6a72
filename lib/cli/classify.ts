/**
 * `mobilenet classify <file|dir|glob|->... [options]`
 *
 * Files named on the command line are always attempted; directories are
 * walked recursively (sorted, hidden entries skipped) for files with an
 * image extension; arguments that are not existing paths and contain glob
 * characters are expanded with tinyglobby; `-` reads one image from
 * standard input; a file reached twice is classified once (lib/cli/inputs.ts).
 * Human output: a small table per image on stdout (errors on stderr, names
 * with control characters escaped). `--json`: one JSON object per line on
 * stdout, written as results arrive. A progress bar goes to stderr when it
 * is a TTY; a summary line (images, errors, images/s) ends every run on
 * stderr (`--quiet` omits it). Many inputs are batched and decoded in
 * parallel automatically (`--batch` overrides). Exit code 0 when every image
 * was classified, 2 when some failed, 1 on usage errors and when stdout
 * fails (other than a reader that went away, EPIPE: a quiet stop).
 */
import path from 'node:path';
import { classifyBatch, type Prediction } from '../classify.js';
import { resolveWeights } from '../default-model.js';
import { BACKENDS } from '../backends/types.js';
import { RESIZE_MODES } from '../image.js';
import { UsageError } from '../errors.js';
import type { ModelOptions } from '../model.js';
import * as v from '../validate.js';
import { IMAGE_EXTENSIONS } from './inputs.js';
import type { CliIO } from './io.js';
import { builderFlags, builderHelp, loadModelWithFlags, oneOf, parseBuilderFlags, parseCommandArgs, positiveInt } from './options.js';
import { escapeControl } from './output.js';
import { IMAGE_RUN_FLAGS, planImageRun, runImages } from './run-images.js';

const HELP = `Usage: mobilenet classify <file|dir|glob|->... [options]

Classifies images with a MobileNet model. Directories are walked recursively
for image files (${[...IMAGE_EXTENSIONS].join(' ')}); quote globs ('photos/**/*.jpg');
- reads one image from standard input. A file named twice is classified once.

Options:
  --weights <path>          model.json (or its directory), .h5 or .keras
                            (default: $MOBILENET_WEIGHTS, else the shipped MobileNet V1 0.75-224)
  --resize <mode>           crop (default: shorter side to size, centre crop) | squash (whole image)
  --top <K>                 predictions per image (default 5; at most the model's classes)
  --threads <N>             inference threads (default: all cores; for 8 or more images, the
                            cores the decoders leave: a third, at least 1)
  --batch <B>               images per inference call (default: chosen from the number of images
                            and cores: all of them up to 7, else 1 with one inference thread, 4 with more)
  --backend <b>             native (default) | reference (plain TypeScript, slow; for checking)
  --labels <file>           class names for fine-tuned models (JSON array, Keras class index, or one per line)
  --json                    one JSON object per line: {"file", "predictions"} or {"file", "error"}
  -q, --quiet               no summary line on stderr at the end
  -h, --help                this text
Architecture options, for weights-only files only (e.g. the official Keras .h5
files; left out: recognized from the weights; a file with a model config takes none):
${builderHelp()}

Exit code: 0 all images classified, 2 some failed, 1 usage error or output lost.
`;

function formatPercent(p: number): string {
  return `${(p * 100).toFixed(2).padStart(6)}%`;
}

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    ...IMAGE_RUN_FLAGS,
    ...builderFlags(),
    top: { type: 'string' },
    labels: { type: 'string' },
    backend: { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`no images given\n\n${HELP}`);
  const resize = oneOf(values.resize, 'resize', RESIZE_MODES);
  const topArg = positiveInt(values.top, 'top');
  const backend = oneOf(values.backend, 'backend', BACKENDS);
  const request = parseBuilderFlags(values as Record<string, string | boolean | undefined>);
  const json = values.json === true;
  const labels = values.labels === undefined ? undefined : path.resolve(io.cwd, values.labels);

  const weights = resolveWeights(values.weights, io.env, io.cwd);
  const plan = await planImageRun('classify', positionals, values, io);
  if (plan === null) return 2;
  const { inputs, batch: batchSize } = plan;
  const modelOptions: ModelOptions = { batch: batchSize, threads: plan.threads };
  if (backend !== undefined) modelOptions.backend = backend;
  const model = await loadModelWithFlags(weights.path, request, modelOptions);

  try {
    if (topArg !== undefined && topArg > model.classes) {
      throw new UsageError(v.message(`integer from 1 to ${model.classes} (the model's number of classes)`, '--top', values.top));
    }
    const top = topArg ?? Math.min(5, model.classes);
    const rankWidth = String(top).length;
    const indexWidth = Math.max(4, String(model.classes - 1).length);
    const m = model;
    return await runImages<Prediction[]>({
      command: 'classify',
      io,
      inputs,
      json,
      quiet: values.quiet === true,
      async *results(sources) {
        for await (const r of classifyBatch(m, sources, { batchSize, concurrency: plan.concurrency, topK: top, resize, labels })) {
          yield { position: r.position, value: r.predictions, error: r.error };
        }
      },
      toJson: (predictions) => ({ predictions }),
      toText: (name, predictions) =>
        `${name}\n${predictions
          .map((p, i) => `  ${String(i + 1).padStart(rankWidth)}. ${formatPercent(p.probability)}  ${String(p.index).padStart(indexWidth)}  ${escapeControl(p.label)}\n`)
          .join('')}`,
    });
  } finally {
    model.dispose();
  }
}
