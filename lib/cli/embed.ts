/**
 * `mobilenet embed <file|dir|glob|->... [options]`
 *
 * Prints the pooled feature vector of each image (the model cut at its global
 * pooling layer, see lib/embed.ts): one line per image, `--json` as
 * `{"file", "embedding": [...]}` (or `{"file", "error"}`), otherwise
 * `<file>\t<v1> <v2> …`. Inputs, batching, output, the summary line and
 * stdout failures are handled as `classify` handles them
 * (lib/cli/inputs.ts, lib/batch.ts, lib/cli/run-images.ts). Exit code 0 all
 * embedded, 2 some failed, 1 usage error or output lost. Weights-only files
 * take the builder flags of every command (`builderFlags`, lib/cli/options.ts).
 */
import { resolveWeights } from '../default-model.js';
import { UsageError } from '../errors.js';
import { RESIZE_MODES } from '../image.js';
import type { CliIO } from './io.js';
import { builderFlags, builderSection, loadModelWithFlags, oneOf, parseBuilderFlags, parseCommandArgs } from './options.js';
import { IMAGE_RUN_FLAGS, planImageRun, runImages } from './run-images.js';

const HELP = `Usage: mobilenet embed <file|dir|glob|->... [options]

Prints the embedding of each image: the model's pooled feature vector (cut at
its global pooling layer, whatever the head; a model without one gets a global
average pooling over its last feature map). One line per image; - reads one
image from standard input.

Options:
  --weights <path>          model.json (or its directory), .h5 or .keras
                            (default: $MOBILENET_WEIGHTS, else the shipped MobileNet V1 0.75-224)
  --normalize               scale each vector to unit L2 norm (cosine similarity = dot product)
  --resize <mode>           crop (default) | squash
  --batch <B>               images per inference call (default: chosen from the number of images, as classify)
  --threads <N>             inference threads (default: as classify)
  --json                    one JSON object per line: {"file", "embedding"} or {"file", "error"}
                            (default: <file><TAB><space-separated values>)
  -q, --quiet               no summary line on stderr at the end
  -h, --help                this text
${builderSection()}

Exit code: 0 all images embedded, 2 some failed, 1 usage error or output lost.
`;

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    ...IMAGE_RUN_FLAGS,
    ...builderFlags(),
    normalize: { type: 'boolean', default: false },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`no images given\n\n${HELP}`);
  const resize = oneOf(values.resize, 'resize', RESIZE_MODES);
  const request = parseBuilderFlags(values as Record<string, string | boolean | undefined>);
  const weights = resolveWeights(values.weights, io.env, io.cwd);
  const plan = await planImageRun('embed', positionals, values, io);
  if (plan === null) return 2;
  const { inputs, batch: batchSize } = plan;
  const model = await loadModelWithFlags(weights.path, request, { threads: plan.threads });
  try {
    const options = { batchSize, concurrency: plan.concurrency, normalize: values.normalize === true, ...(resize === undefined ? {} : { resize }) };
    return await runImages<Float32Array>({
      command: 'embed',
      io,
      inputs,
      json: values.json === true,
      quiet: values.quiet === true,
      async *results(sources) {
        for await (const r of model.embedBatch(sources, options)) yield { position: r.position, value: r.embedding, error: r.error };
      },
      toJson: (embedding) => ({ embedding: Array.from(embedding) }),
      toText: (name, embedding) => `${name}\t${embedding.join(' ')}\n`,
    });
  } finally {
    model.dispose();
  }
}
