/**
 * The limits that keep untrusted model files, images and downloads from
 * exhausting memory, time or disk. One place for their defaults, so that
 * the library, the CLI and the HTTP server use the same numbers.
 *
 * Each limit can be raised per call (the option named in its comment) or
 * for the whole process through an environment variable (read once, at
 * load, through `lib/env.ts`).
 *
 * | limit | default | option | environment |
 * |---|---|---|---|
 * | bytes one model load may allocate | 1 GiB | `maxModelBytes` | `MOBILENET_MAX_MODEL_BYTES` |
 * | estimated memory of one compiled runtime | 4 GiB | `maxCompileBytes` | `MOBILENET_MAX_COMPILE_BYTES` |
 * | nesting depth of JSON config values | 512 | — | `MOBILENET_MAX_JSON_DEPTH` |
 * | HDF5 objects in one file | 200,000 | — | — |
 * | HDF5 read time per file | 120 s | `timeoutMs` | — |
 * | `.keras` zip entries / size of config.json, metadata.json | 10,000 / 64 MiB | — | — |
 * | labels file size | 16 MiB | — | — |
 * | decoded bytes of one image (pixels × channels) | 512 MiB | `maxImageBytes` | `MOBILENET_MAX_IMAGE_BYTES` |
 * | encoded image file size | 256 MiB | `maxImageFileBytes` | — |
 * | decode time of one image | 30 s | `decodeTimeoutSeconds` | `MOBILENET_DECODE_TIMEOUT` |
 * | bytes of images being decoded at once | 1 GiB | — | `MOBILENET_MAX_DECODE_BYTES` |
 * | SVG filter work (primitives × filtered elements × pixels) | 2^31 | — | — |
 * | download deadline | 30 min | `deadlineMs` | — |
 * | HTTP server: request body / uploaded file | 10 MiB | `maxBody` (`--max-body`) | — |
 * | HTTP server: pixels of one uploaded image | 50,000,000 | `maxPixels` (`--max-pixels`) | — |
 *
 * The HTTP server and the queue worker (lib/server/) decode through
 * `lib/image.ts` with these limits: its pixel limit becomes the image
 * module's `limitInputPixels`, SVG is refused through its `allowSvg: false`,
 * and the decoded-bytes, decode-time and in-flight limits above apply as
 * they are.
 */

import { limitOverride as envNumber } from './env.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Bytes one model load may allocate: file bytes read plus the float32 weights decoded (default 1 GiB). */
export const DEFAULT_MAX_MODEL_BYTES = envNumber('MOBILENET_MAX_MODEL_BYTES', GiB);

/** Estimated bytes one compiled runtime may take: packed weights plus live activations × batch (default 4 GiB). */
export const DEFAULT_MAX_COMPILE_BYTES = envNumber('MOBILENET_MAX_COMPILE_BYTES', 4 * GiB);

/** Deepest nesting of arrays/objects accepted in a model config (JSON) (default 512). */
export const MAX_JSON_DEPTH = Math.floor(envNumber('MOBILENET_MAX_JSON_DEPTH', 512));

/** Most HDF5 objects (groups, datasets, links) one file may hold. */
export const MAX_HDF5_OBJECTS = 200_000;

/** Most entries a `.keras` zip central directory may list (Keras writes three). */
export const MAX_ZIP_ENTRIES = 10_000;

/** Largest `config.json` / `metadata.json` inside a `.keras` archive. */
export const MAX_KERAS_JSON_ENTRY_BYTES = 64 * MiB;

/** Longest time the HDF5 library may spend on one file. */
export const DEFAULT_HDF5_TIMEOUT_MS = 120_000;

/** Largest labels file (`--labels`). */
export const MAX_LABELS_FILE_BYTES = 16 * MiB;

/** Decoded bytes one image may need: declared width × height × channels (default 512 MiB). */
export const DEFAULT_MAX_IMAGE_BYTES = envNumber('MOBILENET_MAX_IMAGE_BYTES', 512 * MiB);

/** Largest encoded image file read from disk (default 256 MiB). */
export const DEFAULT_MAX_IMAGE_FILE_BYTES = 256 * MiB;

/** sharp's decode time limit, seconds (default 30). */
export const DEFAULT_DECODE_TIMEOUT_SECONDS = Math.floor(envNumber('MOBILENET_DECODE_TIMEOUT', 30));

/** Decoded bytes of all images being decoded at the same time (default 1 GiB; at least one image always runs). */
export const MAX_DECODE_BYTES_IN_FLIGHT = envNumber('MOBILENET_MAX_DECODE_BYTES', GiB);

/**
 * Most SVG filter work accepted before rendering: filter primitive elements
 * × elements using a filter × declared pixels (2^31; 500 blurs over a
 * 2000×2000 SVG is about a second).
 */
export const MAX_SVG_FILTER_WORK = 2 ** 31;

/** Overall time limit of one download (default 30 minutes). */
export const DEFAULT_DOWNLOAD_DEADLINE_MS = 30 * 60_000;

/** HTTP server: largest request body or uploaded file (`--max-body`, default 10 MiB). */
export const DEFAULT_SERVER_MAX_BODY = 10 * MiB;

/** HTTP server and queue worker: most pixels (width × height) of one image (`--max-pixels`, default 50 megapixels). */
export const DEFAULT_SERVER_MAX_PIXELS = 50_000_000;
