/** The pinned native sources, read from scripts/xnnpack-pins.json (the file scripts/build-native.mjs builds from). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The pinned XNNPACK commit (what a vendored build reports in `xnnpackInfo().commit`). */
export function pinnedXnnpackCommit(): string {
  const pins = JSON.parse(fs.readFileSync(path.join(root, 'scripts', 'xnnpack-pins.json'), 'utf8')) as Array<{ name: string; commit: string }>;
  const pin = pins.find((p) => p.name === 'XNNPACK');
  if (pin === undefined) throw new Error('scripts/xnnpack-pins.json has no XNNPACK entry');
  return pin.commit;
}
