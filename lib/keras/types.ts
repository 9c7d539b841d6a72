/**
 * The contract between the architecture builders, the file readers/writers
 * and the lowering to the graph IR.
 *
 * A model is described by a Keras 2 functional `model_config` (exactly the
 * JSON `tf.keras` writes into `model.json` / `.h5`: `{class_name, config:
 * {name, layers, input_layers, output_layers}}`, inbound nodes in the Keras 2
 * list form `[[["layer", 0, 0, {}]]]`), plus its weights keyed by
 * `<layer name>/<weight name>` without `:0` (TF.js manifest naming, e.g.
 * `conv1/kernel`, `conv1_bn/moving_mean`). Keras 3 configs are normalized to
 * this form when read.
 */

/** One Keras layer as it stands in a functional model config. */
export interface KerasLayerConfig {
  class_name: string;
  /** Keras 2 puts `name` here and inside `config`; Keras 3 only inside `config`. */
  name?: string;
  config: Record<string, unknown> & { name: string };
  /** Keras 2 form: [[[inboundLayer, nodeIndex, tensorIndex, kwargs], ...]] */
  inbound_nodes: Array<Array<[string, number, number, Record<string, unknown>?]>>;
}

export interface KerasModelConfig {
  /** "Model" (Keras 2.1), "Functional" (Keras 2.4+). Sequential is converted to functional when read. */
  class_name: string;
  config: {
    name: string;
    layers: KerasLayerConfig[];
    input_layers: Array<[string, number, number]>;
    output_layers: Array<[string, number, number]>;
  };
}

/** A weight tensor: shape as Keras stores it (kernels HWIO, depthwise [kh,kw,C,m], dense [in,out]). */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

/** `<layer>/<weight>` → tensor, e.g. `conv_dw_1/depthwise_kernel`. */
export type NamedWeights = Map<string, WeightTensor>;

/** A weight a layer expects. */
export interface WeightSpec {
  /** Short name: kernel, bias, depthwise_kernel, gamma, beta, moving_mean, moving_variance. */
  name: string;
  /** `<layer>/<name>`. */
  fullName: string;
  shape: number[];
  trainable: boolean;
}

/** A layer after shape inference. */
export interface AnalyzedLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** Names of the layers feeding this one, in order. */
  inbound: string[];
  /** Keyword arguments of the call from the inbound node (TFOpLambda: `{ y: 3 }`); empty when none. */
  callKwargs: Record<string, unknown>;
  /** Output shape without the batch dimension. */
  outputShape: number[];
  weights: WeightSpec[];
  params: number;
  /** Multiply-adds per sample. */
  macs: number;
}

export interface ModelAnalysis {
  name: string;
  /** Layers in topological order (the config's order when it is one). */
  layers: AnalyzedLayer[];
  inputLayer: string;
  outputLayer: string;
  /** Without batch. */
  inputShape: number[];
  outputShape: number[];
  totalParams: number;
  trainableParams: number;
  nonTrainableParams: number;
  macs: number;
  /** Names of the nested models inlined into `layers` (outermost first); empty for a flat model. */
  nestedModels: string[];
}

export type Architecture = 'v1' | 'v2' | 'v3-small' | 'v3-large';

/** How images are turned into model input. */
export type Preprocessing =
  /** x / 127.5 - 1 (Keras "tf" mode: V1, V2). */
  | 'tf'
  /** Raw 0..255 (V3 with include_preprocessing: the model rescales). */
  | 'none';
