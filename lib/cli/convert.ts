/**
 * `mobilenet convert <in> <out> [--to tfjs|h5|keras] [--quantize uint8|uint16|float16]
 *   [--arch v1|v2|v3-small|v3-large --alpha A ... for weights-only inputs]`
 */
import { flagNames } from '../architectures/options.js';
import { convertModel, type ConvertOptions, type TargetFormat } from '../formats/convert.js';
import { UsageError } from '../errors.js';
import type { CliIO } from './io.js';
import { builderFlags, builderHelp, oneOf, parseBuilderFlags, parseCommandArgs } from './options.js';

const HELP = `Usage: mobilenet convert <input> <output> [options]

Converts a model among the TensorFlow.js layers format (model.json + shards),
Keras HDF5 (.h5, full-model layout with model_config) and Keras 3 (.keras).
The input format is detected from the file; the output format from --to or
the output path: .h5 → Keras HDF5, .keras → Keras 3, a directory or a path
ending in .json → TF.js. Weights are checked against the model before
anything is written.

Options:
  --to <f>                  tfjs | h5 | keras
  --quantize <q>            uint8 | uint16 | float16 (TF.js output only; as tensorflowjs_converter)
  -h, --help                this text
For weights-only inputs (e.g. the official Keras Applications .h5 files); what
is left out is recognized from the weights, what is given must match them:
${builderHelp()}
`;

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    to: { type: 'string' },
    quantize: { type: 'string' },
    ...builderFlags(),
    help: { type: 'boolean', short: 'h' },
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
  Object.assign(options, parseBuilderFlags(values));
  options.optionNames = flagNames;
  let r;
  try {
    r = await convertModel(input, output, options);
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
  const q = options.quantize ? ` (${options.quantize} quantized)` : '';
  io.stdout.write(
    `Converted ${r.input} (${r.from}${r.builtConfig ? `, weights only; config built for --arch ${r.architecture}` : ''})\n` +
      `       to ${r.output} (${r.to}${q}): ${r.weights} weight tensors, ${r.parameters.toLocaleString('en-US')} parameters\n`,
  );
  return 0;
}
