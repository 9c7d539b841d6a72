/**
 * Emits native/schema.gen.h from the op schema (lib/schema.ts): op codes,
 * input slots (kinds, dtypes, optional/variadic), attribute types, counts and
 * ranges, and named indices of inputs and attributes for native/ops.cc.
 *
 *   npx tsx scripts/gen-native-schema.ts          # writes native/schema.gen.h
 *   npx tsx scripts/gen-native-schema.ts --check  # exit 1 when the file is stale
 *
 * test/schema.test.ts runs the check too, so a schema change without a
 * regenerated header fails the suite.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateNativeSchema } from './native-schema.js';

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', 'schema.gen.h');
const text = generateNativeSchema();
if (process.argv.includes('--check')) {
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (current !== text) {
    console.error(`${file} is stale: run npx tsx scripts/gen-native-schema.ts`);
    process.exit(1);
  }
} else {
  fs.writeFileSync(file, text);
  console.log(`wrote ${file}`);
}
