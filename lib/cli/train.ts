/**
 * `mobilenet train <dir> --out <model dir|.h5|.keras> [options]`
 *
 * Trains a softmax classifier on a frozen MobileNet (lib/train): `<dir>`
 * holds one sub-folder of images per class. Prints the report (split,
 * epochs, per-class precision / recall and the confusion matrix on the
 * validation split) on stdout, or one JSON object with `--json`; images that
 * fail to decode are reported on stderr and skipped. Exit code 0 trained
 * and saved, 2 saved but some images were skipped, 1 error (nothing written).
 */
import path from 'node:path';
import { resolveWeights } from '../default-model.js';
import { checkOutputFree, formatEvaluation, saveClassifier, saveFormat, trainClassifier, type TrainOptions, type TrainReport } from '../train/index.js';
import { errorText, escapeControl, progressFor, type Progress } from './output.js';
import { UsageError } from '../errors.js';
import type { CliIO } from './io.js';
import { oneOf, parseCommandArgs, positiveInt } from './options.js';
import * as v from '../validate.js';

const HELP = `Usage: mobilenet train <dir> --out <model dir|file.h5|file.keras> [options]

Trains a classifier for your own classes: <dir> holds one sub-folder of images
per class (e.g. photos/ripe/*.jpg, photos/unripe/*.jpg). Each image is embedded
once by the frozen MobileNet, a softmax layer is fitted on the embeddings, and
the whole model (MobileNet + pooling + Dense softmax, with the class names) is
saved; \`mobilenet classify --weights <out>\` then prints your labels.

Options:
  --out <path>             a new directory (TF.js layers), or a .h5 / .keras file;
                           never overwritten
  --weights <path>         the MobileNet backbone (default: $MOBILENET_WEIGHTS, else
                           the shipped V1 0.75-224)
  --epochs <N>             maximum epochs (default 200; early stopping ends sooner)
  --validation-split <F>   fraction of each class held out (default 0.2; 0: none)
  --augment flip           also train on the mirrored images
  --dropout <R>            dropout before the Dense layer (default 0)
  --l2 <L>                 L2 penalty on the Dense kernel (default 1e-4)
  --learning-rate <LR>     Adam step size (default 0.001)
  --patience <N>           epochs without a better validation loss (default 10)
  --seed <S>               seed of the split, shuffles and dropout (default 1)
  --batch <B>              images per backbone inference call (default 8)
  --threads <N>            backbone threads (default: all cores)
  --json                   print the report as one JSON object
  -h, --help               this text

Exit code: 0 saved, 2 saved but some images could not be read, 1 error (nothing written).
`;

function fraction(value: string | undefined, name: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= max) throw new UsageError(v.message(`number in [0, ${max})`, `--${name}`, value));
  return n;
}

function nonNegative(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(v.message('non-negative number', `--${name}`, value));
  return n;
}

/** The report as text. */
export function formatTrainReport(r: TrainReport, out: string, seconds: number): string {
  const lines: string[] = [];
  lines.push(`backbone: ${r.backbone.architecture}${r.backbone.path ? ` (${r.backbone.path})` : ''}, ${r.backbone.dimension}-value embeddings from ${r.backbone.layer} (${r.backbone.pooling})`);
  lines.push(`classes: ${r.classNames.map((c, i) => `${c} (${r.trainCounts[i]} train, ${r.validationCounts[i]} validation)`).join(', ')}`);
  if (r.trainSamples !== r.trainCounts.reduce((a, b) => a + b, 0)) lines.push(`training samples with mirrored images: ${r.trainSamples}`);
  if (r.skipped.length > 0) lines.push(`skipped: ${r.skipped.length} file(s)`);
  lines.push(`epochs: ${r.epochs} (weights of epoch ${r.bestEpoch}), seed ${r.seed}`);
  lines.push(`time: ${seconds.toFixed(1)} s (embedding ${(r.embedMs / 1000).toFixed(1)} s, fitting ${(r.fitMs / 1000).toFixed(1)} s)`);
  lines.push(`training accuracy ${(r.train.accuracy * 100).toFixed(1)}%`);
  lines.push('');
  if (r.validation === null) lines.push('no validation split (--validation-split 0): no held-out evaluation');
  else lines.push(`validation split: ${formatEvaluation(r.validation)}`);
  lines.push('', `saved: ${out}`);
  return lines.join('\n') + '\n';
}

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    out: { type: 'string' },
    weights: { type: 'string' },
    epochs: { type: 'string' },
    'validation-split': { type: 'string' },
    augment: { type: 'string' },
    dropout: { type: 'string' },
    l2: { type: 'string' },
    'learning-rate': { type: 'string' },
    patience: { type: 'string' },
    seed: { type: 'string' },
    batch: { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`${positionals.length === 0 ? 'no training directory given' : 'one training directory expected'}\n\n${HELP}`);
  if (values.out === undefined || values.out === '') throw new UsageError(`--out is required\n\n${HELP}`);
  const out = path.resolve(io.cwd, values.out);
  const options: TrainOptions = { dir: path.resolve(io.cwd, positionals[0]!) };
  const epochs = positiveInt(values.epochs, 'epochs');
  if (epochs !== undefined) options.epochs = epochs;
  const split = fraction(values['validation-split'], 'validation-split', 1);
  if (split !== undefined) options.validationSplit = split;
  const augment = oneOf(values.augment, 'augment', ['flip'] as const);
  if (augment !== undefined) options.augment = augment;
  const dropout = fraction(values.dropout, 'dropout', 1);
  if (dropout !== undefined) options.dropout = dropout;
  const l2 = nonNegative(values.l2, 'l2');
  if (l2 !== undefined) options.l2 = l2;
  const lr = nonNegative(values['learning-rate'], 'learning-rate');
  if (lr !== undefined) {
    if (lr === 0) throw new UsageError(v.message('positive number', '--learning-rate', values['learning-rate']));
    options.learningRate = lr;
  }
  const patience = positiveInt(values.patience, 'patience');
  if (patience !== undefined) options.patience = patience;
  if (values.seed !== undefined) {
    const s = /^\d+$/.test(values.seed) ? Number(values.seed) : NaN;
    if (!Number.isSafeInteger(s)) throw new UsageError(v.message('non-negative integer', '--seed', values.seed));
    options.seed = s;
  }
  const batch = positiveInt(values.batch, 'batch');
  if (batch !== undefined) options.embedBatchSize = batch;
  const threads = positiveInt(values.threads, 'threads');
  if (threads !== undefined) options.threads = threads;
  options.backbone = resolveWeights(values.weights, io.env, io.cwd).path;
  // Fail before the (slow) embedding when the output exists.
  checkOutputFree(out);

  let progress: Progress | null = null;
  let failed = 0;
  options.onProgress = (p) => {
    if (p.phase !== 'embed') return;
    progress ??= progressFor(io, p.total);
    if (p.error !== undefined) {
      failed++;
      progress?.clear();
      io.stderr.write(`${escapeControl(p.file ?? '')}: error: ${escapeControl(errorText(p.error, p.file ?? ''))}\n`);
    }
    if (progress !== null) {
      progress.done = p.done;
      progress.failed = p.failed;
      progress.tick(p.done === p.total);
      if (p.done === p.total) progress.clear();
    }
  };
  const t0 = performance.now();
  const result = await trainClassifier(options);
  try {
    const saved = await saveClassifier(result, out, { format: saveFormat(out) });
    const seconds = (performance.now() - t0) / 1000;
    for (const s of result.report.skipped) {
      if (!s.reason.startsWith('not ')) continue; // decode errors were printed as they happened
      io.stderr.write(`${path.join(positionals[0]!, s.file)}: skipped: ${s.reason}\n`);
    }
    if (values.json) {
      const { history: _h, ...rest } = result.report;
      io.stdout.write(`${JSON.stringify({ ...rest, output: saved.path, format: saved.format, seconds })}\n`);
    } else {
      io.stdout.write(formatTrainReport(result.report, saved.path, seconds));
    }
  } finally {
    result.model.dispose();
  }
  return failed > 0 ? 2 : 0;
}
