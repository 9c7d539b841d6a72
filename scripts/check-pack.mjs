#!/usr/bin/env node
/**
 * The packed package installs without a compiler (run by .ci/run after `npm run prebuild`):
 *
 *  1. `npm pack` (its prepack re-runs the incremental `npm run prebuild`); the tarball must hold
 *     both prebuilds (linux-x64 an x86-64 ELF, linux-arm64 an AArch64 ELF), LICENSE and the
 *     third-party notices. Prints its size.
 *  2. With a PATH that has node and npm but no cmake, g++, cc, make, ninja or python3:
 *     a) a fresh project installs the tarball with --ignore-scripts, and `npx mobilenet classify`
 *        answers (cat.jpg: a cat class in the top 5);
 *     b) a second fresh project installs it with the install script allowed
 *        (package.json allowScripts, --foreground-scripts): the script must report the
 *        prebuild and compile nothing (no build/ directory; a compile would fail without cmake).
 *
 *   node scripts/check-pack.mjs [--tarball <file.tgz>]   (skips step 1's npm pack)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.MOBILENET_SHARED_DIR ?? path.join(root, '..', 'shared');
const log = (msg) => process.stdout.write(`check-pack: ${msg}\n`);
const fail = (msg) => {
  process.stderr.write(`check-pack: FAILED: ${msg}\n`);
  process.exit(1);
};

const { values } = parseArgs({ options: { tarball: { type: 'string' } } });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-pack-'));
const keep = process.env.MOBILENET_KEEP_PACK_DIR === '1';

try {
  // 1. Pack.
  let tarball = values.tarball ? path.resolve(values.tarball) : null;
  if (tarball === null) {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    // (prepack's build output shares stdout: npm's JSON is the last '[{"id": ...' there)
    const at = [...out.matchAll(/\[\s*\{\s*"id"/g)].at(-1)?.index;
    if (at === undefined) fail(`npm pack --json printed no JSON:\n${out}`);
    const info = JSON.parse(out.slice(at))[0];
    tarball = path.join(work, info.filename);
    log(`npm pack: ${info.filename}, ${(info.size / 1e6).toFixed(2)} MB packed, ${(info.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${info.entryCount} files`);
  }
  const entries = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
  for (const need of ['package/prebuilds/linux-x64/node.napi.glibc.node', 'package/prebuilds/linux-arm64/node.napi.glibc.node',
    'package/prebuilds/THIRD_PARTY_NOTICES.md', 'package/LICENSE', 'package/dist/index.js', 'package/scripts/install.mjs']) {
    if (!entries.includes(need)) fail(`${path.basename(tarball)} has no ${need}`);
  }
  const unpacked = path.join(work, 'unpacked');
  fs.mkdirSync(unpacked);
  execFileSync('tar', ['-xzf', tarball, '-C', unpacked, 'package/prebuilds', 'package/LICENSE']);
  for (const [arch, machine] of [['x64', 62], ['arm64', 183]]) {
    const head = fs.readFileSync(path.join(unpacked, 'package', 'prebuilds', `linux-${arch}`, 'node.napi.glibc.node')).subarray(0, 20);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head.readUInt16LE(18) !== machine) fail(`prebuilds/linux-${arch} is not an ELF for machine ${machine}`);
  }
  const notices = fs.readFileSync(path.join(unpacked, 'package', 'prebuilds', 'THIRD_PARTY_NOTICES.md'), 'utf8');
  for (const c of ['XNNPACK', 'cpuinfo', 'pthreadpool', 'FXdiv']) if (!notices.includes(`## ${c} (`)) fail(`THIRD_PARTY_NOTICES.md has no ${c} section`);
  if (!fs.readFileSync(path.join(unpacked, 'package', 'LICENSE'), 'utf8').includes('Apache License')) fail('LICENSE is not the Apache-2.0 text');
  log(`tarball has both prebuilds (linux-x64: x86-64 ELF, linux-arm64: AArch64 ELF), LICENSE and THIRD_PARTY_NOTICES.md; ${(fs.statSync(tarball).size / 1e6).toFixed(2)} MB`);

  // 2. A PATH with node and npm only (plus the basic tools npm runs scripts with).
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  const banned = new Set(['cmake', 'g++', 'c++', 'gcc', 'cc', 'make', 'ninja', 'python3', 'python', 'clang', 'clang++', 'ld']);
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      if (banned.has(name) || /^(x86_64|aarch64)-linux-gnu-/.test(name) || /^(g\+\+|gcc|cpp|python3)[-.]/.test(name) || fs.existsSync(path.join(bin, name))) continue;
      fs.symlinkSync(path.join(dir, name), path.join(bin, name));
    }
  }
  const env = { ...process.env, PATH: bin };
  for (const k of Object.keys(env)) if (/^npm_|^MOBILENET_NATIVE_PATH$|^MOBILENET_XNNPACK/.test(k)) delete env[k];
  for (const tool of ['cmake', 'g++', 'python3', 'cc']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { env }).status === 0) fail(`${tool} is still on the stripped PATH`);
  }
  const image = path.join(shared, 'images', 'cat.jpg');
  if (!fs.existsSync(image)) fail(`${image} is missing (set MOBILENET_SHARED_DIR)`);

  const project = (name, extra = {}) => {
    const dir = path.join(work, name);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, ...extra }));
    return dir;
  };
  const npm = (cwd, args) => {
    const started = Date.now();
    const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8' });
    const seconds = (Date.now() - started) / 1000;
    if (r.status !== 0) fail(`npm ${args.join(' ')} failed (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
    return { ...r, seconds };
  };

  // 2a. --ignore-scripts, then classify.
  const a = project('fresh-ignore-scripts');
  const ia = npm(a, ['install', tarball, '--ignore-scripts', '--no-audit', '--no-fund']);
  log(`npm install --ignore-scripts (no cmake/g++/python3 on PATH): ${ia.seconds.toFixed(1)} s`);
  const started = Date.now();
  const c = spawnSync('npx', ['mobilenet', 'classify', image, '--top', '5'], { cwd: a, env, encoding: 'utf8' });
  if (c.status !== 0) fail(`npx mobilenet classify failed (status ${c.status}):\n${c.stdout}\n${c.stderr}`);
  if (!/(Egyptian_cat|tabby|tiger_cat)/.test(c.stdout)) fail(`npx mobilenet classify cat.jpg named no cat class:\n${c.stdout}`);
  log(`npx mobilenet classify cat.jpg (${((Date.now() - started) / 1000).toFixed(1)} s):\n${c.stdout.trimEnd().replace(/^/gm, '    ')}`);
  const v = spawnSync('npx', ['mobilenet', '--version'], { cwd: a, env, encoding: 'utf8' });
  if (v.status !== 0 || !/addon: prebuild .*prebuilds\/linux-x64\/node\.napi\.glibc\.node/.test(v.stdout)) fail(`mobilenet --version does not name the prebuild:\n${v.stdout}${v.stderr}`);
  log(`mobilenet --version:\n${v.stdout.trimEnd().replace(/^/gm, '    ')}`);

  // 2b. Install script allowed: uses the prebuild, compiles nothing.
  // (npm 11 blocks dependency install scripts unless allowScripts names the package.)
  const b = project('fresh-with-scripts', { allowScripts: { 'mobilenet-xnnpack': true } });
  const ib = npm(b, ['install', tarball, '--foreground-scripts', '--no-audit', '--no-fund']);
  const said = `${ib.stdout}\n${ib.stderr}`;
  if (!/using the prebuilt addon prebuilds\/linux-x64\/node\.napi\.glibc\.node/.test(said)) fail(`the install script did not report the prebuild:\n${said}`);
  if (/compiling the native addon/.test(said)) fail(`the install script compiled:\n${said}`);
  if (fs.existsSync(path.join(b, 'node_modules', 'mobilenet-xnnpack', 'build'))) fail('the install script left a build/ directory');
  log(`npm install with the install script allowed: ${ib.seconds.toFixed(1)} s, used the prebuild, compiled nothing`);
  log('OK');
} finally {
  if (!keep) fs.rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}
