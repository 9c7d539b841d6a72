/**
 * The acceptance test: `mobilenet classify ../shared/images/imagenet-sample
 * --weights <model.json> --json` gives top-1 / top-5 on the 250 labelled
 * images within 0.5 points of the TensorFlow.js reference of
 * ../shared/README.md (read from its "Reference accuracy" table), and the
 * shipped default model (quantized 0.75) stays within 0.5 points of float32.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultModelPath } from '../lib/default-model.js';
import { runCli } from './helpers/cli-io.js';
import { hasShared, referenceAccuracy, repoRoot, shared } from './helpers/shared.js';

interface Line {
  file: string;
  predictions?: Array<{ index: number; label: string; probability: number }>;
  error?: string;
}

async function classifyDir(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; lines: Line[]; stderr: string }> {
  const r = await runCli(['classify', shared('images', 'imagenet-sample'), '--json', '--batch', '10', ...args], { env, cwd: repoRoot });
  const lines = r.out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Line);
  return { code: r.code, lines, stderr: r.err };
}

function score(lines: Line[]): { n: number; top1: number; top5: number } {
  const labels = JSON.parse(fs.readFileSync(shared('images', 'imagenet-sample', 'labels.json'), 'utf8')) as Record<string, number>;
  let top1 = 0;
  let top5 = 0;
  for (const l of lines) {
    const want = labels[path.basename(l.file)];
    expect(want, l.file).toBeDefined();
    expect(l.error, l.file).toBeUndefined();
    expect(l.predictions).toHaveLength(5);
    if (l.predictions![0]!.index === want) top1++;
    if (l.predictions!.some((p) => p.index === want)) top5++;
  }
  return { n: lines.length, top1: (100 * top1) / lines.length, top5: (100 * top5) / lines.length };
}

// 0.5 points of 250 images: at most one image either way.
const TOL = 0.5 + 1e-9;

describe.skipIf(!hasShared)('accuracy on the 250 labelled ImageNet sample images (CLI --json)', () => {
  it('V1 0.75-224: within 0.5 points of the TF.js reference accuracy (../shared/README.md)', async () => {
    const want = referenceAccuracy('mobilenet_v1_0.75_224');
    const r = await classifyDir(['--weights', shared('models', 'mobilenet_v1_0.75_224', 'model.json')]);
    expect(r.code).toBe(0);
    // stderr carries nothing but the end-of-run summary line: 250 images, no errors.
    expect(r.stderr).toMatch(/^mobilenet classify: 250 images, 0 errors, [\d.]+ images\/s \([\d.]+ s\)\n$/);
    const s = score(r.lines);
    expect(s.n).toBe(250);
    expect(Math.abs(s.top1 - want.top1)).toBeLessThanOrEqual(TOL);
    expect(Math.abs(s.top5 - want.top5)).toBeLessThanOrEqual(TOL);
  });

  it('V1 0.25-224: within 0.5 points of the TF.js reference accuracy (../shared/README.md)', async () => {
    const want = referenceAccuracy('mobilenet_v1_0.25_224');
    const r = await classifyDir(['--weights', shared('models', 'mobilenet_v1_0.25_224', 'model.json')]);
    expect(r.code).toBe(0);
    const s = score(r.lines);
    expect(s.n).toBe(250);
    expect(Math.abs(s.top1 - want.top1)).toBeLessThanOrEqual(TOL);
    expect(Math.abs(s.top5 - want.top5)).toBeLessThanOrEqual(TOL);
  });

  it('the shipped default model (no --weights): within 0.5 points of the float32 0.75 reference accuracy', async () => {
    const want = referenceAccuracy('mobilenet_v1_0.75_224');
    expect(fs.existsSync(defaultModelPath())).toBe(true);
    const r = await classifyDir([], {});
    expect(r.code).toBe(0);
    const s = score(r.lines);
    expect(s.n).toBe(250);
    expect(Math.abs(s.top1 - want.top1)).toBeLessThanOrEqual(TOL);
    expect(Math.abs(s.top5 - want.top5)).toBeLessThanOrEqual(TOL);
  });

  it('models/default is what `mobilenet convert --quantize float16` makes of the shared 0.75 model, and PROVENANCE.md lists its sha256s', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-default-'));
    try {
      const r = await runCli(['convert', shared('models', 'mobilenet_v1_0.75_224', 'model.json'), out, '--quantize', 'float16'], { cwd: repoRoot });
      expect(r.code, r.err).toBe(0);
      const dir = path.dirname(defaultModelPath());
      const shipped = fs.readdirSync(dir).filter((f) => f !== 'PROVENANCE.md').sort();
      expect(fs.readdirSync(out).sort()).toEqual(shipped);
      const provenance = fs.readFileSync(path.join(dir, 'PROVENANCE.md'), 'utf8');
      for (const f of shipped) {
        const a = fs.readFileSync(path.join(dir, f));
        expect(a.equals(fs.readFileSync(path.join(out, f))), f).toBe(true);
        expect(provenance).toContain(`${crypto.createHash('sha256').update(a).digest('hex')}  ${f}`);
      }
      const total = shipped.reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
      expect(total).toBeLessThan(5.5 * 1024 * 1024);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
