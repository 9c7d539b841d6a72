#!/usr/bin/env node
/**
 * Builds the native addon (build/Release/mobilenet_xnnpack.node).
 *
 *   node scripts/build-native.mjs           (npm install: incremental)
 *   node scripts/build-native.mjs --force   (npm run build:native: rebuild the addon)
 *
 * Where XNNPACK comes from, in this order:
 *  1. MOBILENET_XNNPACK_ARCHIVES=<dir>: the four pinned .tar.xz archives + SHA256SUMS
 *     (the layout of ../shared/vendor); hashes are verified before use.
 *  2. Otherwise a finished cache entry of the same pinned commits (same recipe
 *     and compiler), else the pinned commits downloaded from GitHub (short
 *     timeout; skipped with MOBILENET_XNNPACK_DOWNLOAD=0).
 *  3. MOBILENET_XNNPACK=system, or when nothing above worked: Debian's
 *     libxnnpack-dev + libpthreadpool-dev (checked at configure time).
 *
 * The vendored XNNPACK is built ONCE per key (archive hashes or commits, the
 * build recipe, the compiler, the architecture) into
 *   $MOBILENET_XNNPACK_CACHE or $XDG_CACHE_HOME/mobilenet-xnnpack or ~/.cache/mobilenet-xnnpack
 * under <key>/ (built in a temporary sibling directory, then renamed: the
 * rename is the atomic completion marker). The addon's CMake links the static
 * libraries from there, so later builds and fresh clones reuse them.
 *
 * Other variables: MOBILENET_BUILD_DIR (default "build"), MOBILENET_BUILD_JOBS (default 2),
 * MOBILENET_BUILD_RUNNER=0 (skip bench/native's runner), MOBILENET_TARGET_ARCH=arm64 (cross-build
 * for linux-arm64 on x86-64 with Debian's g++-aarch64-linux-gnu through
 * cmake/toolchain-aarch64-linux-gnu.cmake; pinned XNNPACK only). `npm run prebuild`
 * (scripts/prebuild.mjs) uses the last three.
 */
/* global fetch, AbortSignal */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/**
 * The pinned sources (see ../shared/vendor/README.md), in scripts/xnnpack-pins.json: the one place
 * their commits are written (the prebuilds' notices and the tests read it too).
 */
export const PINS = JSON.parse(fs.readFileSync(path.join(root, 'scripts', 'xnnpack-pins.json'), 'utf8'));
const XNNPACK_COMMIT = PINS[0].commit;
const LIBS = ['libXNNPACK.a', 'libxnnpack-microkernels-prod.a', 'libpthreadpool.a', 'libcpuinfo.a'];
const SYSTEM_APT = 'libxnnpack-dev libpthreadpool-dev';
const BUILD_TOOLS_APT = 'cmake ninja-build g++ python3 xz-utils';
/** Printed whenever an addon is built against Debian's XNNPACK (measured with bench/, see README). */
const SYSTEM_XNNPACK_WARNING =
  "WARNING: this addon is built against Debian's 2022 XNNPACK (libxnnpack-dev), not the pinned one: " +
  'it measured 1.3x slower at 1 thread and 2-4x slower at 2 threads. For full speed rebuild with the pinned ' +
  'XNNPACK: MOBILENET_XNNPACK_ARCHIVES=<dir with the pinned archives> or network access to github.com, then npm run build:native.';

/**
 * The machine the addon is built for. Cross builds (only linux-arm64 from
 * linux-x64 so far) go through a CMake toolchain file.
 */
const CROSS = {
  arm64: { toolchain: path.join(root, 'cmake', 'toolchain-aarch64-linux-gnu.cmake'), cc: 'aarch64-linux-gnu-gcc', cxx: 'aarch64-linux-gnu-g++', apt: 'g++-aarch64-linux-gnu' },
};

function target() {
  const arch = process.env.MOBILENET_TARGET_ARCH || process.arch;
  if (arch === process.arch) return { arch, cross: null };
  const cross = process.platform === 'linux' && process.arch === 'x64' ? CROSS[arch] : undefined;
  if (!cross) throw new BuildError(`MOBILENET_TARGET_ARCH=${arch}: cross-building from ${process.platform}-${process.arch} is not supported (only linux-x64 to linux-arm64)`);
  return { arch, cross };
}

class BuildError extends Error {}

const log = (msg) => process.stderr.write(`[mobilenet-xnnpack] ${msg}\n`);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: opts.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit', encoding: 'utf8', ...opts });
  if (r.error) {
    if (r.error.code === 'ENOENT') throw new BuildError(`'${cmd}' not found. Install the build tools: apt-get install ${BUILD_TOOLS_APT}`);
    throw new BuildError(`${cmd} failed to start: ${r.error.message}`);
  }
  if (r.status !== 0) {
    const detail = opts.capture ? `\n${r.stdout ?? ''}${r.stderr ?? ''}` : '';
    throw new BuildError(`${cmd} ${args.join(' ')} exited with status ${r.status}${detail}`);
  }
  return r.stdout ?? '';
}

function has(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function sha256File(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function sha256(text) {
  return crypto.createHash('sha256').update(text).digest('hex');
}

function cacheRoot() {
  if (process.env.MOBILENET_XNNPACK_CACHE) return path.resolve(process.env.MOBILENET_XNNPACK_CACHE);
  const base = process.env.XDG_CACHE_HOME ? process.env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'mobilenet-xnnpack');
}

/** What, besides the sources, changes the built libraries. */
function recipeKey() {
  const { arch, cross } = target();
  let recipe = fs.readFileSync(path.join(root, 'cmake', 'xnnpack', 'CMakeLists.txt'), 'utf8');
  if (cross) recipe += fs.readFileSync(cross.toolchain, 'utf8');
  const cc = spawnSync(cross ? cross.cc : process.env.CC || 'cc', ['--version'], { encoding: 'utf8' });
  const cxx = spawnSync(cross ? cross.cxx : process.env.CXX || 'c++', ['--version'], { encoding: 'utf8' });
  const compilers = `${(cc.stdout || '').split('\n')[0]}|${(cxx.stdout || '').split('\n')[0]}`;
  return `${sha256(recipe)}|${compilers}|${process.platform}-${arch}|${process.env.CFLAGS ?? ''}|${process.env.CXXFLAGS ?? ''}`;
}

/** -DCMAKE_TOOLCHAIN_FILE=... for a cross build, nothing otherwise. */
function toolchainArgs(prefix = '-D') {
  const { cross } = target();
  return cross ? [`${prefix}CMAKE_TOOLCHAIN_FILE=${cross.toolchain}`] : [];
}

/** Verifies MOBILENET_XNNPACK_ARCHIVES and returns { key, unpack(dir) }. */
function archiveSource(dir) {
  const sumsFile = path.join(dir, 'SHA256SUMS');
  if (!fs.existsSync(sumsFile)) throw new BuildError(`MOBILENET_XNNPACK_ARCHIVES=${dir}: no SHA256SUMS file there`);
  const sums = new Map();
  for (const line of fs.readFileSync(sumsFile, 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)\s*$/.exec(line.trim());
    if (m) sums.set(m[2], m[1]);
  }
  const hashes = [];
  for (const pin of PINS) {
    const file = path.join(dir, pin.archive);
    if (!fs.existsSync(file)) throw new BuildError(`MOBILENET_XNNPACK_ARCHIVES=${dir}: missing ${pin.archive}`);
    const expected = sums.get(pin.archive);
    if (!expected) throw new BuildError(`MOBILENET_XNNPACK_ARCHIVES=${dir}: SHA256SUMS has no entry for ${pin.archive}`);
    const actual = sha256File(file);
    if (actual !== expected) {
      throw new BuildError(`MOBILENET_XNNPACK_ARCHIVES=${dir}: SHA-256 mismatch for ${pin.archive}: expected ${expected}, got ${actual}. The archive is corrupt or not the pinned one.`);
    }
    hashes.push(`${pin.archive}=${actual}`);
  }
  return {
    origin: `archives in ${dir}`,
    key: sha256(`archives|${hashes.join('|')}|${recipeKey()}`).slice(0, 24),
    unpack(into) {
      const dirs = {};
      for (const pin of PINS) {
        run('tar', ['-xJf', path.join(dir, pin.archive), '-C', into]);
        dirs[pin.cmakeVar] = path.join(into, pin.archive.split('-').slice(0, 2).join('-'));
      }
      return dirs;
    },
  };
}

/** The pinned commits from GitHub; null when the network does not allow it. */
async function downloadSource() {
  if (process.env.MOBILENET_XNNPACK_DOWNLOAD === '0') return null;
  const url = (pin) => `https://github.com/${pin.owner}/${pin.repo}/archive/${pin.commit}.tar.gz`;
  try {
    const probe = await fetch(url(PINS[3]), { method: 'HEAD', redirect: 'follow', signal: AbortSignal.timeout(8000) });
    if (!probe.ok) throw new Error(`HTTP ${probe.status}`);
  } catch (e) {
    log(`cannot download XNNPACK from github.com (${e.cause?.code ?? e.message}); skipping the download`);
    return null;
  }
  return {
    origin: 'github.com downloads',
    key: sha256(`commits|${PINS.map((p) => `${p.repo}=${p.commit}`).join('|')}|${recipeKey()}`).slice(0, 24),
    async unpack(into) {
      const dirs = {};
      for (const pin of PINS) {
        log(`downloading ${url(pin)}`);
        const res = await fetch(url(pin), { redirect: 'follow', signal: AbortSignal.timeout(600_000) });
        if (!res.ok) throw new BuildError(`download of ${url(pin)} failed: HTTP ${res.status}`);
        const file = path.join(into, `${pin.repo}.tar.gz`);
        fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
        run('tar', ['-xzf', file, '-C', into]);
        fs.rmSync(file);
        dirs[pin.cmakeVar] = path.join(into, `${pin.repo}-${pin.commit}`);
      }
      return dirs;
    },
  };
}

function generatorArgs() {
  if (has('ninja')) return ['-G', 'Ninja'];
  log('ninja not found: using Unix Makefiles (apt-get install ninja-build for faster builds)');
  return ['-G', 'Unix Makefiles'];
}

function jobs() {
  const j = Number(process.env.MOBILENET_BUILD_JOBS ?? 2);
  return Number.isInteger(j) && j > 0 ? j : 2;
}

/**
 * A finished cache entry of the pinned commits built with this recipe and
 * compiler, whatever its origin (archives or download): lets a fresh clone
 * without MOBILENET_XNNPACK_ARCHIVES reuse it instead of downloading.
 */
function findCachedBuild() {
  const cache = cacheRoot();
  if (!fs.existsSync(cache)) return null;
  const recipe = sha256(recipeKey());
  for (const entry of fs.readdirSync(cache)) {
    const manifest = path.join(cache, entry, 'manifest.json');
    if (entry.includes('.tmp-') || !fs.existsSync(manifest)) continue;
    try {
      const m = JSON.parse(fs.readFileSync(manifest, 'utf8'));
      const samePins = PINS.every((p) => m.pins?.some((q) => q.repo === p.repo && q.commit === p.commit));
      if (m.xnnpack === XNNPACK_COMMIT && samePins && m.recipe === recipe &&
          LIBS.every((l) => fs.existsSync(path.join(cache, entry, 'lib', l)))) {
        return path.join(cache, entry);
      }
    } catch {
      // not ours or incomplete: ignore
    }
  }
  return null;
}

/** Builds the pinned XNNPACK into the cache once; returns its prefix (lib/, include/). */
async function ensureVendored(source) {
  const cache = cacheRoot();
  const prefix = path.join(cache, source.key);
  if (fs.existsSync(path.join(prefix, 'manifest.json'))) {
    log(`reusing XNNPACK ${XNNPACK_COMMIT.slice(0, 8)} built in ${prefix}`);
    return prefix;
  }
  if (!has('cmake')) throw new BuildError(`cmake not found. Install the build tools: apt-get install ${BUILD_TOOLS_APT}`);
  if (!has('python3')) throw new BuildError(`python3 not found (XNNPACK's configure step runs it). apt-get install python3`);
  fs.mkdirSync(cache, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cache, `${source.key}.tmp-`));
  const started = Date.now();
  try {
    log(`building XNNPACK ${XNNPACK_COMMIT.slice(0, 8)} for linux-${target().arch} from ${source.origin} into ${prefix} (once; a few minutes)`);
    const src = path.join(tmp, 'src');
    const build = path.join(tmp, 'build');
    fs.mkdirSync(src);
    const dirs = await source.unpack(src);
    run('cmake', [
      '-S', path.join(root, 'cmake', 'xnnpack'), '-B', build, ...generatorArgs(),
      '-DCMAKE_BUILD_TYPE=Release', ...toolchainArgs(),
      ...Object.entries(dirs).map(([k, v]) => `-D${k}=${v}`),
    ]);
    run('cmake', ['--build', build, '--parallel', String(jobs())]);
    const libDir = path.join(tmp, 'lib');
    const incDir = path.join(tmp, 'include');
    fs.mkdirSync(libDir);
    fs.mkdirSync(incDir);
    const found = new Map();
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (LIBS.includes(e.name) && !found.has(e.name)) found.set(e.name, p);
      }
    };
    walk(build);
    for (const lib of LIBS) {
      const p = found.get(lib);
      if (!p) throw new BuildError(`the XNNPACK build did not produce ${lib}`);
      fs.copyFileSync(p, path.join(libDir, lib));
    }
    const headers = [
      [dirs.XNNPACK_SOURCE_DIR, 'include'],
      [dirs.PTHREADPOOL_SOURCE_DIR, 'include'],
      [dirs.CPUINFO_SOURCE_DIR, 'include'],
    ];
    for (const [base, sub] of headers) {
      for (const f of fs.readdirSync(path.join(base, sub))) {
        if (f.endsWith('.h')) fs.copyFileSync(path.join(base, sub, f), path.join(incDir, f));
      }
    }
    const seconds = (Date.now() - started) / 1000;
    fs.writeFileSync(path.join(tmp, 'manifest.json'), `${JSON.stringify({
      xnnpack: XNNPACK_COMMIT, pins: PINS.map(({ repo, commit }) => ({ repo, commit })), origin: source.origin,
      recipe: sha256(recipeKey()),
      libs: LIBS, builtAt: new Date().toISOString(), buildSeconds: seconds,
    }, null, 2)}\n`);
    fs.rmSync(src, { recursive: true, force: true });
    fs.rmSync(build, { recursive: true, force: true });
    try {
      fs.renameSync(tmp, prefix); // atomic completion
    } catch (e) {
      if (!fs.existsSync(path.join(prefix, 'manifest.json'))) throw e;
      fs.rmSync(tmp, { recursive: true, force: true }); // another build finished first
    }
    log(`XNNPACK built in ${seconds.toFixed(1)} s`);
    return prefix;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function main() {
  const force = process.argv.includes('--force');
  const started = Date.now();
  const buildDir = path.resolve(root, process.env.MOBILENET_BUILD_DIR ?? 'build');
  const mode = process.env.MOBILENET_XNNPACK ?? '';
  if (mode !== '' && mode !== 'system' && mode !== 'vendored') {
    throw new BuildError(`MOBILENET_XNNPACK must be "system" or "vendored" (got "${mode}")`);
  }
  if (!has('cmake')) throw new BuildError(`cmake not found. Install the build tools: apt-get install ${BUILD_TOOLS_APT}`);
  const { arch, cross } = target();
  if (cross) {
    if (!has(cross.cxx)) throw new BuildError(`${cross.cxx} not found (cross-building for linux-${arch}). apt-get install ${cross.apt}`);
    if (mode === 'system') throw new BuildError(`MOBILENET_XNNPACK=system cannot cross-build for linux-${arch}: the pinned XNNPACK is needed`);
  }

  let prefix = null;
  if (mode !== 'system') {
    let source = null;
    if (process.env.MOBILENET_XNNPACK_ARCHIVES) source = archiveSource(path.resolve(process.env.MOBILENET_XNNPACK_ARCHIVES));
    else {
      prefix = findCachedBuild();
      if (prefix) log(`reusing XNNPACK ${XNNPACK_COMMIT.slice(0, 8)} built in ${prefix}`);
      else source = await downloadSource();
    }
    if (source) prefix = await ensureVendored(source);
    else if (prefix) {
      // cached build found
    } else if (mode === 'vendored' || cross) {
      throw new BuildError('MOBILENET_XNNPACK=vendored but no sources: set MOBILENET_XNNPACK_ARCHIVES=<dir with the pinned archives> or allow github.com downloads');
    } else log(`falling back to the system XNNPACK (${SYSTEM_APT})`);
  }

  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const defs = prefix
    ? ['--CDMOBILENET_XNNPACK_SOURCE=vendored', `--CDMOBILENET_XNNPACK_PREFIX=${prefix}`, `--CDMOBILENET_XNNPACK_COMMIT=${XNNPACK_COMMIT}`]
    : ['--CDMOBILENET_XNNPACK_SOURCE=system', '--CDMOBILENET_XNNPACK_PREFIX=', '--CDMOBILENET_XNNPACK_COMMIT='];
  const gen = has('ninja') ? ['-G', 'Ninja'] : ['-m'];
  const runner = process.env.MOBILENET_BUILD_RUNNER === '0' ? ['--CDMOBILENET_BUILD_RUNNER=OFF'] : [];
  const args = ['-d', root, '-O', buildDir, ...gen, '-p', String(jobs()), '--CDCMAKE_BUILD_TYPE=Release', ...defs,
    ...(cross ? ['--arch', arch, ...toolchainArgs('--CD')] : []), ...runner];
  // cmake-js `build` configures only when there is no CMake cache: when the
  // XNNPACK choice (or anything else passed to CMake) changed, rebuild.
  const stamp = path.join(buildDir, 'mobilenet-build.json');
  const config = JSON.stringify({ args: args.slice(2) });
  const same = fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === config;
  if (fs.existsSync(stamp)) fs.rmSync(stamp);
  run(process.execPath, [cmakeJs, force || !same ? 'rebuild' : 'build', ...args], { cwd: root });
  fs.writeFileSync(stamp, config);
  const out = path.join(buildDir, 'Release', 'mobilenet_xnnpack.node');
  if (!fs.existsSync(out)) throw new BuildError(`the build finished but ${out} is missing`);
  log(`built ${path.relative(root, out)} for linux-${arch} (${prefix ? 'vendored XNNPACK' : 'system XNNPACK'}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (!prefix) log(SYSTEM_XNNPACK_WARNING);
}

main().catch((e) => {
  log(`native build failed: ${e instanceof BuildError ? e.message : e.stack ?? e}`);
  log('Fixes: install the build tools (apt-get install ' + BUILD_TOOLS_APT + '), set MOBILENET_XNNPACK_ARCHIVES=<dir with the pinned XNNPACK archives>, or MOBILENET_XNNPACK=system with apt-get install ' + SYSTEM_APT + '.');
  process.exit(1);
});
