/**
 * The one module of the library that reads environment variables. Every
 * variable the shipped code honours is listed in `LIBRARY_ENV` (and in the
 * README's "Environment variables" table, checked against this list by
 * test/env.test.ts); everything else in `lib/` asks these functions.
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
