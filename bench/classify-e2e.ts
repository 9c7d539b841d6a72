/**
 * `npm run bench:classify [-- --rounds R --dir DIR]`: the end-to-end row of
 * the benchmark suite on its own (bench/lib/classify-e2e.ts says what is
 * measured); `npm run bench` includes it. The load average is recorded
 * beside the numbers.
 *
 * Results: bench/results/local/classify-e2e-<date>.json (untracked), or
 * bench/results/ with --update.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sharedDirSetting } from '../test/helpers/env.js';
import { classifyE2ETable, measureClassifyE2E } from './lib/classify-e2e.js';
import { resultsDir } from './lib/out.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string' },
    update: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds <= 0) throw new RangeError(`Expected positive integer for --rounds but received ${JSON.stringify(values.rounds)}`);
const dir = path.resolve(values.dir ?? path.join(sharedDirSetting, 'images', 'imagenet-sample'));
const result = { date: new Date().toISOString(), ...(await measureClassifyE2E(dir, rounds, (l) => process.stderr.write(`${l}\n`))) };
const outDir = resultsDir(values);
fs.mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `classify-e2e-${result.date.slice(0, 10)}.json`);
fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${classifyE2ETable(result).join('\n')}\n\nwritten ${path.relative(process.cwd(), file)}\n`);
