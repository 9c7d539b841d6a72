#!/usr/bin/env node
/**
 * The package's install script (`npm install`, `npm rebuild`).
 *
 * Does nothing when the prebuilt addon shipped in `prebuilds/` matches this
 * platform and loads here. Compiles from source (scripts/build-native.mjs)
 * only when
 *  - the user asks: `npm install --build-from-source` / `npm_config_build_from_source=true`
 *    (the convention of other native packages), or `--build-from-source` here;
 *  - there is already a source build (a clone, or an earlier source build): it is brought up to date;
 *  - no prebuild matches (e.g. musl/Alpine, 32-bit ARM, macOS), or the matching one fails to load.
 * Whether a prebuild loads is decided by lib/binding.ts (dist/binding.js), the
 * one place that loads the binary.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => process.stderr.write(`[mobilenet-xnnpack] ${msg}\n`);

function requested() {
  const v = process.env.npm_config_build_from_source;
  return process.argv.includes('--build-from-source') || (v !== undefined && v !== '' && v !== 'false' && v !== '0');
}

/** null when a prebuild loads here; otherwise why we compile. */
async function whyCompile() {
  if (requested()) return 'requested with --build-from-source';
  if (fs.existsSync(path.join(root, 'build', 'Release', 'mobilenet_xnnpack.node'))) return 'updating the existing source build in build/';
  const dist = path.join(root, 'dist', 'binding.js');
  if (!fs.existsSync(dist)) return 'no compiled dist/binding.js to check a prebuild with (a source checkout)';
  delete process.env.MOBILENET_NATIVE_PATH; // the install decides about this package's own binaries
  const binding = await import(pathToFileURL(dist).href);
  const prebuild = binding.prebuildPath(root);
  const target = `${process.platform}-${process.arch}${process.platform === 'linux' ? (fs.existsSync('/etc/alpine-release') ? ' (musl)' : ' (glibc)') : ''}`;
  if (prebuild === null) return `no prebuilt addon for ${target} in this package (it ships linux-x64 and linux-arm64 for glibc)`;
  try {
    const info = binding.xnnpackInfo();
    if (!info.initialized) return `the prebuilt addon ${prebuild} loads but XNNPACK does not initialize on this CPU (${info.initStatus})`;
    log(`using the prebuilt addon ${path.relative(root, info.path)} (XNNPACK ${info.commit?.slice(0, 8) ?? info.source}); nothing to compile`);
    return null;
  } catch (e) {
    return `the prebuilt addon ${prebuild} does not load here (${e.message.split('\n')[0].replace(/ Fixes:$/, '')})`;
  }
}

const why = await whyCompile();
if (why !== null) {
  const upToDate = why.startsWith('updating');
  log(`compiling the native addon from source: ${why}.`);
  if (!upToDate) {
    log('This takes about 3-13 minutes on a 2-core x86-64 machine (XNNPACK once, then the addon; far longer on a ' +
      'Raspberry Pi) and needs cmake, ninja (optional), g++, python3 and xz (apt-get install cmake ninja-build g++ python3 xz-utils). ' +
      'npm shows the progress only with --foreground-scripts.');
  }
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
