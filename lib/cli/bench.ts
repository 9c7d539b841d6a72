/**
 * `mobilenet bench [options]`: runs the benchmark suite (bench/run.ts) of a
 * source checkout, the same as `npm run bench -- [options]`. The suite and
 * its comparison engines (TF.js, onnxruntime-node) are development
 * dependencies, so an installed package does not carry them: the command
 * says so instead of failing obscurely.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliIO } from './index.js';

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mobilenet-xnnpack') return dir;
      } catch {
        // keep looking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
    dir = parent;
  }
}

export async function run(args: string[], io: CliIO): Promise<number> {
  const root = packageRoot();
  const script = path.join(root, 'bench', 'run.ts');
  if (!fs.existsSync(script)) {
    io.stderr.write(
      `mobilenet bench: the benchmark suite is not part of the installed package (no ${script}).\n` +
        'It lives in the source repository: clone it, run `npm ci`, then `npm run bench` (or `npm run bench -- --quick`).\n',
    );
    return 1;
  }
  try {
    createRequire(path.join(root, 'package.json')).resolve('tsx');
  } catch {
    io.stderr.write('mobilenet bench: tsx is not installed (a devDependency): run `npm ci` in the source checkout first.\n');
    return 1;
  }
  return new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: root,
      env: io.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => io.stdout.write(d));
    child.stderr.on('data', (d: Buffer) => io.stderr.write(d));
    child.on('error', (e) => {
      io.stderr.write(`mobilenet bench: could not start the benchmark: ${e.message}\n`);
      resolve(1);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
