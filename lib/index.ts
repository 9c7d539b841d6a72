/**
 * mobilenet-xnnpack: MobileNet V1/V2/V3 image classification on XNNPACK.
 *
 * The public API. Everything here is also reachable from its own module
 * (`mobilenet-xnnpack/dist/<module>.js`), but this is the supported surface.
 */
export { loadModel, Model, detectArchitecture, detectPreprocessing } from './model.js';
export type { ModelOptions, FromArchitectureOptions } from './model.js';
export { classify, classifyBatch, topK } from './classify.js';
export type { Prediction, ClassifyOptions, BatchOptions, BatchResult, Predictor } from './classify.js';
export { embeddingCut, l2Normalize, cosineSimilarity } from './embed.js';
export type { EmbeddingCut, EmbedOptions, EmbedBatchOptions, EmbeddingResult } from './embed.js';
export { trainClassifier, saveClassifier, classifierConfig, readImageFolder, fitSoftmax, predictSoftmax, evaluateProbabilities, formatEvaluation } from './train/index.js';
export type { TrainOptions, TrainResult, TrainReport, TrainProgress, Evaluation, ClassMetrics, SoftmaxOptions, SoftmaxHead } from './train/index.js';
export { loadImageTensor, decodeImage, decodeBudgetStats, pixelsToTensor } from './image.js';
export type { ImageSource, RawPixels, ResizeMode, PreprocessOptions, DecodeOptions, DecodeBudgetStats } from './image.js';
export { imagenetClasses, imagenetLabels } from './labels.js';
export type { ImageNetClass } from './labels.js';
export {
  buildArchitecture,
  mobilenetV1,
  mobilenetV2,
  mobilenetV3Small,
  mobilenetV3Large,
  makeDivisible,
  correctPad,
  ARCHITECTURES,
  KERAS_ALPHAS,
} from './architectures/index.js';
export type { ArchitectureOptions, MobileNetV1Options, MobileNetV2Options, MobileNetV3Options } from './architectures/index.js';
export { analyzeModel } from './keras/layers.js';
export { formatSummary } from './keras/summary.js';
export { randomWeights } from './keras/random.js';
export { lowerModel } from './keras/lower.js';
export type {
  Architecture,
  KerasModelConfig,
  KerasLayerConfig,
  ModelAnalysis,
  AnalyzedLayer,
  NamedWeights,
  WeightTensor,
  Preprocessing,
} from './keras/types.js';
export { readModelFile, readModelConfig, detectFormat } from './formats/index.js';
export type { ModelFormat, ModelFile } from './formats/index.js';
export { convertModel } from './formats/convert.js';
export { writeTfjs } from './formats/tfjs-write.js';
export { readH5, writeH5 } from './formats/h5.js';
export { readKeras3, writeKeras3 } from './formats/keras3.js';
export { downloadWeights, weightFile } from './download.js';
export { defaultModelPath } from './default-model.js';
export { Graph } from './graph.js';
export type { Tensor, Shape, TensorType, Node, NodeOf, OpName, DType, Quantization } from './graph.js';
export { OPS, OP_NAMES } from './schema.js';
export { serializeGraph, GRAPH_FORMAT_VERSION } from './graph-format.js';
export { Runtime, compileGraph } from './runtime.js';
export type { CompileOptions, BackendName } from './runtime.js';
export { xnnpackInfo } from './binding.js';
export type { XnnpackInfo } from './binding.js';
export {
  MobileNetError,
  DisposedError,
  BusyError,
  GraphFormatError,
  XnnpackError,
  NativeLoadError,
  ModelFormatError,
  UnsupportedLayerError,
  WeightMismatchError,
  ImageDecodeError,
  UsageError,
  NotAClassifierError,
  QuantizationError,
  TrainingDataError,
  OutputExistsError,
} from './errors.js';
export type { ImageProblem } from './errors.js';
// int8 post-training quantization (issue 15; runs on the TypeScript int8 reference kernels until the op schema lands).
export { quantizeModel, loadQuantizedModel, QuantizedModel } from './quantize/index.js';
export type { QuantizeOptions, CalibrationSource, Int8Metadata } from './quantize/index.js';
