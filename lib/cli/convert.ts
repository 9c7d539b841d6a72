/**
 * `mobilenet convert <in> <out> [--to tfjs|h5|keras] [--quantize uint8|uint16|float16]
 *   [--arch v1|v2|v3-small|v3-large --alpha A ... for weights-only inputs]`
 */
import { parseArgs } from 'node:util';
import { ARCHITECTURES } from '../architectures/index.js';
import { convertModel, type ConvertOptions, type TargetFormat } from '../formats/convert.js';
import type { Architecture } from '../keras/types.js';
import { UsageError } from '../errors.js';
import type { CliIO } from './io.js';
import { positiveInt, positiveNumber, oneOf } from './options.js';

const HELP = `Usage: mobilenet convert <input> <output> [options]

Converts a model among the TensorFlow.js layers format (model.json + shards),
Keras HDF5 (.h5, full-model layout with model_config) and Keras 3 (.keras).
The input format is detected from the file; the output format from --to or
the output path: .h5 → Keras HDF5, .keras → Keras 3, a directory or a path
ending in .json → TF.js. Weights are checked against the model before
anything is written.

Options:
  --to <f>                tfjs | h5 | keras
  --quantize <q>          uint8 | uint16 | float16 (TF.js output only; as tensorflowjs_converter)
For weights-only inputs (e.g. the official Keras Applications .h5 files):
  --arch <a>              v1 | v2 | v3-small | v3-large
  --alpha <A>             width multiplier (default 1.0)
  --depth-multiplier <D>  V1 depthwise depth multiplier (default 1)
  --minimalistic          V3 minimalistic variant
  --no-top                without the classifier (feature extractor)
  --pooling <p>           avg | max pooling when --no-top
  --classes <N>           classifier classes (default 1000)
  --input-size <S>        square input size (default 224)
  -h, --help              this text
`;

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      to: { type: 'string' },
      quantize: { type: 'string' },
      arch: { type: 'string' },
      alpha: { type: 'string' },
      'depth-multiplier': { type: 'string' },
      'input-size': { type: 'string' },
      minimalistic: { type: 'boolean' },
      'no-top': { type: 'boolean' },
      pooling: { type: 'string' },
      classes: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 2) {
    throw new UsageError(`expected <input> <output> but received ${positionals.length} argument(s)${positionals.length ? `: ${positionals.join(' ')}` : ''}\n\n${HELP}`);
  }
  const [input, output] = positionals as [string, string];
  const options: ConvertOptions = {};
  const to = oneOf(values.to, 'to', ['tfjs', 'h5', 'keras'] as const satisfies readonly TargetFormat[]);
  if (to !== undefined) options.to = to;
  const quantize = oneOf(values.quantize, 'quantize', ['uint8', 'uint16', 'float16'] as const);
  if (quantize !== undefined) options.quantize = quantize;
  const arch = oneOf(values.arch, 'arch', ARCHITECTURES as readonly Architecture[]);
  if (arch !== undefined) options.architecture = arch;
  const alpha = positiveNumber(values.alpha, 'alpha');
  if (alpha !== undefined) options.alpha = alpha;
  const dm = positiveInt(values['depth-multiplier'], 'depth-multiplier');
  if (dm !== undefined) options.depthMultiplier = dm;
  const size = positiveInt(values['input-size'], 'input-size');
  if (size !== undefined) options.inputShape = [size, size, 3];
  if (values.minimalistic) options.minimalistic = true;
  if (values['no-top']) options.includeTop = false;
  const pooling = oneOf(values.pooling, 'pooling', ['avg', 'max'] as const);
  if (pooling !== undefined) options.pooling = pooling;
  const classes = positiveInt(values.classes, 'classes');
  if (classes !== undefined) options.classes = classes;
  const archOnly = ['alpha', 'depthMultiplier', 'inputShape', 'minimalistic', 'includeTop', 'pooling', 'classes'].filter((k) => k in options);
  if (options.architecture === undefined && archOnly.length > 0) {
    throw new UsageError(`--${archOnly[0] === 'includeTop' ? 'no-top' : archOnly[0]} needs --arch (architecture options apply to weights-only inputs)`);
  }
  let r;
  try {
    r = await convertModel(input, output, options);
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
  const q = options.quantize ? ` (${options.quantize} quantized)` : '';
  io.stdout.write(
    `Converted ${r.input} (${r.from}${r.builtConfig ? `, weights only; config built for --arch ${options.architecture}` : ''})\n` +
      `       to ${r.output} (${r.to}${q}): ${r.weights} weight tensors, ${r.parameters.toLocaleString('en-US')} parameters\n`,
  );
  return 0;
}
