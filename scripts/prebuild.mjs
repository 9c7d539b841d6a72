#!/usr/bin/env node
/**
 * `npm run prebuild`: the prebuilt addons shipped inside the npm package, in
 * node-gyp-build's layout (lib/binding.ts loads them through node-gyp-build's
 * matching rules):
 *
 *   prebuilds/linux-x64/node.napi.glibc.node     (native build)
 *   prebuilds/linux-arm64/node.napi.glibc.node   (cross-built with Debian's g++-aarch64-linux-gnu)
 *   prebuilds/THIRD_PARTY_NOTICES.md             (XNNPACK, cpuinfo, pthreadpool, FXdiv licenses)
 *
 *   node scripts/prebuild.mjs                 both architectures (on linux-x64)
 *   node scripts/prebuild.mjs --arch arm64    one of them
 *
 * Always the pinned XNNPACK (never Debian's): MOBILENET_XNNPACK_ARCHIVES=<dir>
 * with the vendored archives, or a cache entry / download (scripts/build-native.mjs).
 * Each architecture has its own incremental build directory (build-prebuild-<arch>/),
 * so a second run only re-links what changed. glibc baseline: the build
 * machine's (Debian 12, glibc 2.36); checked below with readelf.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => process.stderr.write(`[mobilenet-xnnpack prebuild] ${msg}\n`);

/** ELF e_machine of each architecture, and the newest glibc symbol version we accept (Debian 12). */
const TARGETS = {
  x64: { machine: 62, elf: 'x86-64', strip: 'strip' },
  arm64: { machine: 183, elf: 'AArch64', strip: 'aarch64-linux-gnu-strip' },
};
const GLIBC_BASELINE = [2, 36];
const PREBUILD_NAME = 'node.napi.glibc.node';

class PrebuildError extends Error {}

function defaultArches() {
  if (process.platform !== 'linux') throw new PrebuildError(`prebuilds are made on Linux (this is ${process.platform})`);
  if (process.arch === 'x64') return ['x64', 'arm64'];
  if (process.arch === 'arm64') return ['arm64'];
  throw new PrebuildError(`no prebuild recipe for linux-${process.arch}`);
}

/** Checks that `file` is an ELF shared object for `arch`; returns the newest GLIBC_x.y it needs. */
function checkElf(file, arch) {
  const t = TARGETS[arch];
  const head = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.readUInt32BE(0) !== 0x7f454c46) throw new PrebuildError(`${file} is not an ELF file`);
  const machine = head.readUInt16LE(18);
  if (machine !== t.machine) throw new PrebuildError(`${file} is ELF machine ${machine}, expected ${t.machine} (${t.elf})`);
  const r = spawnSync('readelf', ['-V', '-W', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new PrebuildError(`readelf -V ${file} failed: ${r.stderr}`);
  let newest = [0, 0];
  for (const m of r.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)) {
    const v = [Number(m[1]), Number(m[2])];
    if (v[0] > newest[0] || (v[0] === newest[0] && v[1] > newest[1])) newest = v;
  }
  if (newest[0] > GLIBC_BASELINE[0] || (newest[0] === GLIBC_BASELINE[0] && newest[1] > GLIBC_BASELINE[1])) {
    throw new PrebuildError(`${file} needs GLIBC_${newest.join('.')}, newer than the Debian 12 baseline ${GLIBC_BASELINE.join('.')}`);
  }
  return `GLIBC_${newest.join('.')}`;
}

function buildOne(arch) {
  const started = Date.now();
  const buildDir = path.join(root, `build-prebuild-${arch}`);
  const env = {
    ...process.env,
    MOBILENET_BUILD_DIR: buildDir,
    MOBILENET_TARGET_ARCH: arch,
    MOBILENET_XNNPACK: 'vendored',
    MOBILENET_BUILD_RUNNER: '0',
  };
  log(`linux-${arch}: building in ${path.relative(root, buildDir)}/`);
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0) throw new PrebuildError(`the linux-${arch} build failed (status ${r.status})`);
  const built = path.join(buildDir, 'Release', 'mobilenet_xnnpack.node');
  const outDir = path.join(root, 'prebuilds', `linux-${arch}`);
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, PREBUILD_NAME);
  const tmp = `${out}.tmp-${process.pid}`;
  fs.copyFileSync(built, tmp);
  // Debug symbols and the static symbol table are not needed to run (about half the file).
  const s = spawnSync(TARGETS[arch].strip, ['--strip-unneeded', tmp], { stdio: 'inherit' });
  if (s.error || s.status !== 0) log(`linux-${arch}: ${TARGETS[arch].strip} failed; keeping the unstripped binary`);
  const glibc = checkElf(tmp, arch);
  fs.renameSync(tmp, out);
  const seconds = (Date.now() - started) / 1000;
  log(`linux-${arch}: ${path.relative(root, out)} (${(fs.statSync(out).size / 1e6).toFixed(2)} MB, ${TARGETS[arch].elf}, needs ${glibc}) in ${seconds.toFixed(1)} s`);
  return { arch, file: out, seconds };
}

/** The licenses of the code compiled into the prebuilds, from the pinned sources. */
function writeNotices() {
  const archives = process.env.MOBILENET_XNNPACK_ARCHIVES;
  const out = path.join(root, 'prebuilds', 'THIRD_PARTY_NOTICES.md');
  const components = JSON.parse(fs.readFileSync(path.join(root, 'scripts', 'xnnpack-pins.json'), 'utf8')).map((p) => ({
    name: p.name, url: `https://github.com/${p.owner}/${p.repo}`, archive: p.archive, commit: p.commit, license: p.license,
  }));
  if (!archives) {
    if (fs.existsSync(out)) {
      log(`MOBILENET_XNNPACK_ARCHIVES is not set: keeping the existing ${path.relative(root, out)}`);
      return;
    }
    throw new PrebuildError('MOBILENET_XNNPACK_ARCHIVES=<dir with the pinned archives> is needed to write the third-party notices (the license texts come from the archives)');
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-notices-'));
  try {
    const parts = [
      '# Third-party notices',
      '',
      'The prebuilt addons in this directory (`linux-x64/`, `linux-arm64/`) statically link the following',
      'libraries, compiled from the pinned commits below. Their licenses follow.',
      '',
      '| component | source | commit | license |',
      '|---|---|---|---|',
      ...components.map((c) => `| ${c.name} | ${c.url} | ${c.commit} | ${c.license} |`),
      '',
    ];
    for (const c of components) {
      const dir = c.archive.split('-').slice(0, 2).join('-');
      const r = spawnSync('tar', ['-xJf', path.join(archives, c.archive), '-C', tmp, `${dir}/LICENSE`], { encoding: 'utf8' });
      if (r.status !== 0) throw new PrebuildError(`cannot read ${dir}/LICENSE from ${c.archive}: ${r.stderr}`);
      const text = fs.readFileSync(path.join(tmp, dir, 'LICENSE'), 'utf8').trimEnd();
      parts.push(`## ${c.name} (${c.license})`, '', `From ${c.url} at ${c.commit}, file LICENSE:`, '', '```text', text, '```', '');
    }
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, parts.join('\n'));
    log(`wrote ${path.relative(root, out)}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function main() {
  const { values } = parseArgs({ options: { arch: { type: 'string' } } });
  const arches = values.arch ? values.arch.split(',') : defaultArches();
  for (const a of arches) if (!TARGETS[a]) throw new PrebuildError(`--arch ${a}: expected x64 or arm64`);
  const started = Date.now();
  writeNotices();
  const done = arches.map(buildOne);
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${done.map((d) => `linux-${d.arch} ${d.seconds.toFixed(1)} s`).join(', ')}`);
}

try {
  main();
} catch (e) {
  log(e instanceof PrebuildError ? e.message : e.stack ?? String(e));
  process.exit(1);
}
