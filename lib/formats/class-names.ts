/**
 * Class names stored with a model (a classifier trained by `mobilenet train`),
 * so `classify` prints the user's labels without a `--labels` file:
 * - TF.js `model.json`: `userDefinedMetadata.classNames` (TensorFlow.js's
 *   field for user metadata; `model.getUserDefinedMetadata()` returns it);
 * - Keras `.h5`: the root attribute `class_names`, a JSON list of strings;
 * - Keras 3 `.keras`: `metadata.json`'s `class_names`.
 * Keras and TensorFlow.js ignore these entries when loading.
 */
import { ModelFormatError } from '../errors.js';

/** Validates stored class names: undefined when absent, a ModelFormatError when malformed. */
export function parseClassNames(value: unknown, file: string, where: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length === 0 || !value.every((x) => typeof x === 'string')) {
    throw new ModelFormatError(`${where} is not a non-empty list of strings`, file);
  }
  return [...(value as string[])];
}

/** Checks class names given to a writer. */
export function checkClassNames(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || !value.every((x) => typeof x === 'string')) {
    throw new TypeError(`Expected non-empty array of strings for classNames but received ${JSON.stringify(value)?.slice(0, 80)}`);
  }
  return [...(value as string[])];
}
