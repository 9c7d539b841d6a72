/**
 * Byte-level HDF5 edits for crafting files h5wasm cannot write (float16
 * datasets): HDF5 2.x writes version 2 object headers, protected by Bob
 * Jenkins' lookup3 checksum (H5_checksum_lookup3, initial value 0), so an
 * edited header gets its checksum recomputed here.
 */

/** lookup3 `hashlittle` (as HDF5's H5_checksum_lookup3). */
export function lookup3(key: Uint8Array, initval = 0): number {
  const rot = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;
  let length = key.length;
  let a = (0xdeadbeef + length + initval) >>> 0;
  let b = a;
  let c = a;
  let o = 0;
  const w = (i: number): number => (key[o + i] ?? 0) | ((key[o + i + 1] ?? 0) << 8) | ((key[o + i + 2] ?? 0) << 16) | ((key[o + i + 3] ?? 0) << 24);
  while (length > 12) {
    a = (a + w(0)) >>> 0;
    b = (b + w(4)) >>> 0;
    c = (c + w(8)) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0;
    length -= 12;
    o += 12;
  }
  if (length === 0) return c;
  const tail = new Uint8Array(12);
  tail.set(key.subarray(o, o + length));
  const t = (i: number): number => (tail[i] as number) | ((tail[i + 1] as number) << 8) | ((tail[i + 2] as number) << 16) | ((tail[i + 3] as number) << 24);
  a = (a + t(0)) >>> 0;
  b = (b + t(4)) >>> 0;
  c = (c + t(8)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0;
  return c;
}

/**
 * Replaces bytes at `at` inside a version 2 object header ("OHDR" chunk 0)
 * and rewrites that chunk's checksum. Throws when `at` is not in one.
 */
export function patchObjectHeader(file: Buffer, at: number, replacement: Uint8Array): void {
  const start = file.lastIndexOf('OHDR', at);
  if (start < 0 || file[start + 4] !== 2) throw new Error('not inside a version 2 object header');
  const flags = file[start + 5] as number;
  let p = start + 6;
  if (flags & 0x20) p += 16; // times
  if (flags & 0x10) p += 4; // attribute phase change values
  const sizeBytes = 1 << (flags & 0x03);
  let chunk = 0;
  for (let i = 0; i < sizeBytes; i++) chunk += (file[p + i] as number) * 2 ** (8 * i);
  p += sizeBytes;
  const end = p + chunk; // checksum follows
  if (at + replacement.length > end) throw new Error('patch runs past the object header chunk');
  file.set(replacement, at);
  file.writeUInt32LE(lookup3(file.subarray(start, end)), end);
}
