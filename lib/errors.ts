/**
 * Every error class the library throws. Parameter errors use the built-in
 * TypeError (wrong type) and RangeError (out of range) with one message
 * template, built by `lib/validate.ts`.
 */

/** Base class of the library's own errors (not of TypeError/RangeError). */
export class MobileNetError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A graph, runtime or model was used after `dispose()`. */
export class DisposedError extends MobileNetError {
  constructor(what: string) {
    super(`${what} has been disposed`);
  }
}

/** XNNPACK returned a status other than success. */
export class XnnpackError extends MobileNetError {
  constructor(
    message: string,
    readonly status: string = 'unknown',
    readonly node: string | undefined = undefined,
  ) {
    super(message);
  }
}

/** A runtime was asked to run while a run was in progress (`runSync()` with `run()` calls pending, or the raw binding). */
export class BusyError extends MobileNetError {}

/** Bytes given to the native graph reader are not a valid serialized graph (lib/graph-format.ts). */
export class GraphFormatError extends MobileNetError {}

/** The native addon could not be loaded. */
export class NativeLoadError extends MobileNetError {}

/**
 * A model file (model.json, shard, .h5, .keras) is missing, corrupt or not a
 * Keras model, or its layers' shapes do not fit (a kernel or pool larger than
 * its input, a Reshape that does not hold its input). `file` is the model
 * file (the message then starts with `<file>: `); undefined for a config object.
 */
export class ModelFormatError extends MobileNetError {
  constructor(
    message: string,
    readonly file: string | undefined = undefined,
    options?: { cause?: unknown },
  ) {
    super(file === undefined ? message : `${file}: ${message}`, options);
  }
}

/**
 * A Keras layer class, or an option or input size of a layer, the library
 * cannot run. `file` is the model file when the layer came from one (the
 * message then starts with `<file>: `); undefined for a config object or a
 * built architecture.
 */
export class UnsupportedLayerError extends MobileNetError {
  constructor(
    readonly layerName: string,
    readonly className: string,
    /** What about the layer is unsupported ('' when only its class is). */
    readonly detail = '',
    readonly file: string | undefined = undefined,
    options?: { cause?: unknown },
  ) {
    const message = `Unsupported layer '${layerName}' of class ${className}${detail ? `: ${detail}` : ''}`;
    super(file === undefined ? message : `${file}: ${message}`, options);
  }

  /**
   * This error naming `file`: itself when it already names a file or `file` is
   * undefined, else the same error with the file (this one as its cause).
   */
  inFile(file: string | undefined): UnsupportedLayerError {
    if (file === undefined || this.file !== undefined) return this;
    return new UnsupportedLayerError(this.layerName, this.className, this.detail, file, { cause: this });
  }
}

/** The full lists behind a WeightMismatchError's summary. */
export interface WeightMismatchDetails {
  /** How many weights the model expects. */
  expected: number;
  missing: Array<{ name: string; expected: number[] }>;
  misShaped: Array<{ name: string; expected: number[]; actual: number[] }>;
  /** Weights of the file no layer uses. */
  extra: Array<{ name: string; actual: number[] }>;
}

/** Weights missing, extra or of the wrong shape for the model's layers (the message summarizes; `details` lists all). */
export class WeightMismatchError extends MobileNetError {
  constructor(
    message: string,
    readonly details: WeightMismatchDetails | undefined = undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Why an image was refused (`ImageDecodeError.reason`), for callers that
 * answer differently per case (the HTTP server: 415, 413 or 400):
 * `'svg-refused'` SVG input with `allowSvg: false`; `'too-many-pixels'`
 * width × height over `limitInputPixels`; `'too-many-bytes'` decoded size
 * over `maxImageBytes`; `'file'` a path that is not a readable regular file
 * of acceptable size; `'timeout'` the decode time limit; `'undecodable'`
 * not an image, or a corrupt one.
 */
export type ImageProblem = 'svg-refused' | 'too-many-pixels' | 'too-many-bytes' | 'file' | 'timeout' | 'undecodable';

/** An image that could not be decoded or is too large. */
export class ImageDecodeError extends MobileNetError {
  readonly reason: ImageProblem;
  constructor(
    message: string,
    readonly file: string | undefined = undefined,
    options?: { cause?: unknown; reason?: ImageProblem },
  ) {
    super(file === undefined ? message : `${file}: ${message}`, options);
    this.reason = options?.reason ?? 'undecodable';
  }
}

/** A download failed: network, HTTP status, size or time limit, hash mismatch, not a Keras file, or file system. */
export class DownloadError extends MobileNetError {
  constructor(
    message: string,
    readonly url: string | undefined = undefined,
    options?: { cause?: unknown },
  ) {
    super(url === undefined ? message : `${message} (${url})`, options);
  }
}

/** A command-line usage error (unknown or misused option): `mobilenet` prints it and exits with code 1. */
export class UsageError extends MobileNetError {}

/** `classify` on a model whose output is not a probability distribution over classes (use `embed` for features). */
export class NotAClassifierError extends MobileNetError {}

/** A model that cannot be quantized to int8, or calibration input that cannot be used. */
export class QuantizationError extends MobileNetError {}

/** Training data that cannot make a classifier (no class folders, an empty class, a single class, …). */
export class TrainingDataError extends MobileNetError {}

/** An output path that already exists (nothing is overwritten). */
export class OutputExistsError extends MobileNetError {
  constructor(readonly path: string) {
    super(`${path}: the output path already exists (nothing was written; remove it or choose another path)`);
  }
}
