/**
 * `mobilenet quantize <weights> <out> --calibration <dir> [--images N] [--float-classifier|--int8-classifier]
 *   [--float-layers a,b] [--float-ops op,op] [--equalization off|free|all] [--backend native|reference]
 *   [--resize crop|squash] [--arch v1|v2|v3-small|v3-large --alpha A ... for weights-only inputs]`
 */
import path from 'node:path';
import { BACKENDS } from '../backends/types.js';
import { RESIZE_MODES } from '../image.js';
import { RANGE_METHODS } from '../quantize/calibrate.js';
import { quantizeModel } from '../quantize/index.js';
import { defaultQuantizeBackend, EQUALIZATIONS } from '../quantize/pipeline.js';
import type { QOp } from '../quantize/qgraph.js';
import { FLOAT_ONLY_OPS, QUANTIZABLE_OPS } from '../quantize/quantize.js';
import { OP_NAMES } from '../schema.js';
import { UsageError } from '../errors.js';
import type { CliIO } from './io.js';
import { builderFlags, builderHelp, helpRow, loadModelWithFlags, oneOf, parseBuilderFlags, parseCommandArgs, positiveInt } from './options.js';

const HELP = `Usage: mobilenet quantize <weights> <output-dir> --calibration <dir> [options]

Post-training int8 quantization: the float model (TF.js model.json, Keras .h5
or .keras) is run on the calibration images to measure activation ranges
(min/max) and mean activations, then weights are quantized per output channel
(symmetric int8), activations per tensor (asymmetric int8), biases to int32
after correcting them for the mean shift of weight rounding; the classifier
head (from the global pooling on) stays float32, except V3's two-layer head,
which is quantized too. Writes <output-dir>/model.json
and <output-dir>/weights.bin (docs/int8.md).

Options:
  --calibration <dir>       directory of calibration images (its .jpg/.jpeg/.png/
                            .webp/.gif/.tif/.tiff/.avif files, by name; required)
  --images <N>              use at most N of them (default 100)
  --resize <mode>           crop (default: shorter side to size, centre crop) |
                            squash (whole image), as classify
  --method <m>              minmax (default): activation ranges are the extremes seen;
                            mse: a second pass picks the range with the least
                            expected quantization error per tensor
  --int8-classifier         quantize the classifier head too (default for V3,
                            whose head has a hidden 1x1 convolution)
  --float-classifier        keep the classifier head in float32 (default for V1, V2)
  --no-bias-correction      do not correct biases for the mean shift of weight
                            rounding
  --float-layers <a,b>      keep these layers (Keras layer names, e.g. conv1) in
                            float32
${helpRow(
  '--float-ops <op,op>',
  `keep these ops in float32 instead of the ones the backend has no int8 kernel for (replaces that list); the ops with int8 kernels are ${[...QUANTIZABLE_OPS].join(', ')}; the op schema's float32-only ops (${[...FLOAT_ONLY_OPS].join(', ')}) stay float32 anyway`,
)}
  --equalization <e>        activation range equalization: free (default) rescales
                            the channels of activations read only by depthwise or
                            float32 layers so each spans its tensor's int8 range;
                            all also those read by int8 convolutions; off none
  --backend <b>             the backend the int8 model is for: native (default when
                            the addon loads) calibrates on XNNPACK and keeps in
                            float32 the ops the loaded XNNPACK build has no int8
                            kernel for; reference quantizes every op the op schema
                            has in int8 (average pooling stays float32 for both)
                            and calibrates on the TypeScript kernels
  -h, --help                this text
For weights-only inputs (e.g. the official Keras Applications .h5 files); what
is left out is recognized from the weights, what is given must match them:
${builderHelp()}
`;

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    calibration: { type: 'string' },
    images: { type: 'string' },
    'int8-classifier': { type: 'boolean' },
    'float-classifier': { type: 'boolean' },
    'no-bias-correction': { type: 'boolean' },
    'float-layers': { type: 'string' },
    'float-ops': { type: 'string' },
    method: { type: 'string' },
    equalization: { type: 'string' },
    backend: { type: 'string' },
    resize: { type: 'string' },
    ...builderFlags(),
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 2) {
    throw new UsageError(`expected <weights> <output-dir> but received ${positionals.length} argument(s)${positionals.length ? `: ${positionals.join(' ')}` : ''}\n\n${HELP}`);
  }
  if (values.calibration === undefined) throw new UsageError(`--calibration <dir> is required\n\n${HELP}`);
  const input = path.resolve(io.cwd, positionals[0]!);
  const output = path.resolve(io.cwd, positionals[1]!);
  const images = positiveInt(values.images, 'images') ?? 100;
  const method = oneOf(values.method, 'method', RANGE_METHODS) ?? 'minmax';
  const equalization = oneOf(values.equalization, 'equalization', EQUALIZATIONS);
  const backend = oneOf(values.backend, 'backend', BACKENDS) ?? defaultQuantizeBackend();
  const resize = oneOf(values.resize, 'resize', RESIZE_MODES);
  // Each name checked against the list quantizeModel checks floatOps against (checkInt8Options: the schema's op names).
  const floatOps = values['float-ops']?.split(',').map((op): QOp => oneOf(op.trim(), 'float-ops', OP_NAMES)!);
  const request = parseBuilderFlags(values as Record<string, string | boolean | undefined>);
  if (values['int8-classifier'] && values['float-classifier']) throw new UsageError(`--int8-classifier and --float-classifier exclude each other\n\n${HELP}`);
  const progress = io.stderr.isTTY === true;
  const start = Date.now();
  // Loaded here (not by quantizeModel) so that messages about the builder options name the flags.
  const model = await loadModelWithFlags(input, request, { backend: 'reference', batch: 1 });
  const q = await quantizeModel(model, {
    calibration: path.resolve(io.cwd, values.calibration),
    images,
    ...(values['int8-classifier'] ? { floatHead: false } : values['float-classifier'] ? { floatHead: true } : {}),
    biasCorrection: !values['no-bias-correction'],
    ...(values['float-layers'] ? { floatLayers: values['float-layers'].split(',').map((x) => x.trim()).filter(Boolean) } : {}),
    ...(floatOps === undefined ? {} : { floatOps }),
    method,
    ...(equalization === undefined ? {} : { equalization }),
    backend,
    ...(resize === undefined ? {} : { resize }),
    ...(progress ? { onProgress: (n: number) => io.stderr.write(`\rcalibrating: ${n} image(s)`) } : {}),
  }).finally(() => model.dispose());
  if (progress) io.stderr.write('\n');
  const { modelJson, weights } = await q.save(output);
  const d = q.describe();
  const meta = q.metadata;
  io.stdout.write(
    `Quantized ${input} (${meta.name}, ${meta.architecture}) with ${meta.quantization.calibrationImages} calibration images (${meta.quantization.method === 'mse' ? 'least-error ranges' : 'min/max'}${meta.quantization.biasCorrection ? ', bias correction' : ''}, equalization ${meta.quantization.equalization ?? 'off'}) for the ${backend} backend in ${((Date.now() - start) / 1000).toFixed(1)} s\n` +
      `  ${d.int8Nodes} int8 ops, ${d.floatNodes} float32 ops${meta.quantization.floatHead ? ' (classifier head)' : ''}, ${d.converts} conversions; ${d.weightBytes.toLocaleString('en-US')} bytes of weights\n` +
      (meta.quantization.floatOps ? `  kept in float32 (no int8 kernel on the ${backend} backend): ${meta.quantization.floatOps.join(', ')}\n` : '') +
      `  wrote ${modelJson} and ${weights}\n`,
  );
  return 0;
}
