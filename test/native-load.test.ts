/**
 * lib/binding.ts when the addon cannot be loaded: NativeLoadError listing the
 * fixes. (Own file: it resets the module registry to get a fresh binding.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';

describe('native addon loading', () => {
  it('a missing or broken binary gives NativeLoadError listing the fixes', async () => {
    const saved = process.env.MOBILENET_NATIVE_PATH;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-load-'));
    try {
      fs.writeFileSync(path.join(dir, 'broken.node'), 'not an ELF file');
      for (const [file, why] of [[path.join(dir, 'missing.node'), /is not built: .*missing\.node does not exist/], [path.join(dir, 'broken.node'), /could not be loaded/]] as const) {
        process.env.MOBILENET_NATIVE_PATH = file;
        vi.resetModules(); // a fresh lib/binding.ts (it caches the loaded addon)
        const binding = await import('../lib/binding.js');
        const errors = await import('../lib/errors.js');
        expect(() => binding.loadBinding()).toThrow(errors.NativeLoadError);
        expect(() => binding.loadBinding()).toThrow(why);
        expect(() => binding.xnnpackInfo()).toThrow(/npm run build:native[\s\S]*MOBILENET_XNNPACK_ARCHIVES[\s\S]*apt-get install libxnnpack-dev libpthreadpool-dev/);
        // the npm-side fixes for a package whose install script npm skipped
        expect(() => binding.loadBinding()).toThrow(/npm install-scripts approve mobilenet-xnnpack[\s\S]*npm rebuild mobilenet-xnnpack/);
      }
    } finally {
      if (saved === undefined) delete process.env.MOBILENET_NATIVE_PATH;
      else process.env.MOBILENET_NATIVE_PATH = saved;
      vi.resetModules();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prebuildPath() picks prebuilds/<platform>-<arch>/ by node-gyp-build\'s rules (libc tag, napi)', async () => {
    const { prebuildPath } = await import('../lib/binding.js');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-prebuilds-'));
    try {
      const here = `${process.platform}-${process.arch}`;
      const put = (rel: string): string => {
        const file = path.join(root, 'prebuilds', rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, '');
        return file;
      };
      expect(prebuildPath(root)).toBeNull(); // no prebuilds/ at all
      put(`${process.platform}-not${process.arch}/node.napi.glibc.node`);
      put(`${process.platform === 'linux' ? 'darwin' : 'linux'}-${process.arch}/node.napi.node`);
      expect(prebuildPath(root)).toBeNull(); // other architecture, other platform
      const isMusl = fs.existsSync('/etc/alpine-release');
      put(`${here}/node.napi.${isMusl ? 'glibc' : 'musl'}.node`);
      expect(prebuildPath(root)).toBeNull(); // the other libc
      const mine = put(`${here}/node.napi.${isMusl ? 'musl' : 'glibc'}.node`);
      expect(prebuildPath(root)).toBe(mine);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
