/**
 * The one module of the library that reads environment variables. Every
 * variable the shipped code honours is listed in `LIBRARY_ENV` (and in the
 * README's "Environment variables" table, checked against this list by
 * test/structure.test.ts); everything else in `lib/` asks these functions.
 *
 * Each reader takes the environment as a parameter (default `process.env`)
 * so that the CLI can pass the `env` of its `CliIO` and tests need not touch
 * the real process environment. An empty value counts as unset.
 *
 * Benchmark- and test-only variables live in `bench/lib/env.ts` and
 * `test/helpers/env.ts`; the native build script (`scripts/build-native.mjs`,
 * plain JavaScript run at install time) reads its own, listed in the README.
 */
export type Env = Readonly<Record<string, string | undefined>>;

export interface EnvVariable {
  name: string;
  /** One sentence: what it does and its default. */
  doc: string;
}

/** Every environment variable the library and the `mobilenet` CLI read. */
export const LIBRARY_ENV: readonly EnvVariable[] = [
  { name: 'MOBILENET_NATIVE_PATH', doc: 'path of a built mobilenet_xnnpack.node to load instead of the local source build (build/Release) or the prebuilt addon (prebuilds/)' },
  { name: 'MOBILENET_WEIGHTS', doc: 'model the CLI uses when no --weights is given (default: the shipped MobileNet V1 0.75-224)' },
  { name: 'KERAS_HOME', doc: 'Keras cache root: `mobilenet download` saves to $KERAS_HOME/models (default ~/.keras/models)' },
  { name: 'MOBILENET_MAX_MODEL_BYTES', doc: 'bytes one model load may allocate: file bytes read plus float32 weights decoded (default 1 GiB)' },
  { name: 'MOBILENET_MAX_COMPILE_BYTES', doc: 'estimated bytes one compiled runtime may take (default 4 GiB)' },
  { name: 'MOBILENET_MAX_JSON_DEPTH', doc: 'deepest nesting of JSON values accepted in a model config (default 512)' },
  { name: 'MOBILENET_MAX_IMAGE_BYTES', doc: 'decoded bytes one image may need: width × height × channels (default 512 MiB)' },
  { name: 'MOBILENET_MAX_DECODE_BYTES', doc: 'decoded bytes of all images being decoded at the same time (default 1 GiB)' },
  { name: 'MOBILENET_DECODE_TIMEOUT', doc: 'decode time limit of one image, seconds (default 30)' },
  { name: 'UV_THREADPOOL_SIZE', doc: "Node's libuv thread pool size (Node's own variable, default 4): sharp decodes on it, so batch classification and embedding keep at most this many images decoding" },
];

function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** `MOBILENET_NATIVE_PATH`: an addon to load instead of the built one. */
export function nativePathOverride(env: Env = process.env): string | undefined {
  return read(env, 'MOBILENET_NATIVE_PATH');
}

/** `MOBILENET_WEIGHTS`: the CLI's model when no `--weights` is given. */
export function weightsOverride(env: Env = process.env): string | undefined {
  return read(env, 'MOBILENET_WEIGHTS');
}

/** `KERAS_HOME`: the Keras cache root (its `models/` holds downloaded weights). */
export function kerasHome(env: Env = process.env): string | undefined {
  return read(env, 'KERAS_HOME');
}

/**
 * A positive number limit (`MOBILENET_MAX_*`, `MOBILENET_DECODE_TIMEOUT`;
 * see lib/limits.ts), or `fallback` when unset. A value that is not a
 * positive number is a RangeError.
 */
export function limitOverride(name: string, fallback: number, env: Env = process.env): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`Expected positive number for ${name} but received ${JSON.stringify(raw)}`);
  return n;
}

/**
 * `UV_THREADPOOL_SIZE`: the size of libuv's thread pool as Node uses it
 * (default 4, libuv clamps to 1..1024), where sharp decodes images.
 */
export function threadpoolSize(env: Env = process.env): number {
  const n = Number(read(env, 'UV_THREADPOOL_SIZE'));
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}
