/**
 * Byte-level HDF5 edits for crafting files h5wasm cannot write (float16
 * datasets): HDF5 2.x writes version 2 object headers, protected by Bob
 * Jenkins' lookup3 checksum (H5_checksum_lookup3, initial value 0), so an
 * edited header gets its checksum recomputed here.
 */

import type { KerasModelConfig } from '../../lib/keras/types.js';

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

/** One message of a version 2 object header: its type, where its 4- or 6-byte header starts, its body's offset and size. */
export interface HeaderMessage {
  type: number;
  at: number;
  body: number;
  size: number;
}

/** The messages of chunk 0 of the version 2 object header that contains `at`. */
export function headerMessages(file: Buffer, at: number): { start: number; end: number; headerBytes: number; messages: HeaderMessage[] } {
  const start = file.lastIndexOf('OHDR', at);
  if (start < 0 || file[start + 4] !== 2) throw new Error('not inside a version 2 object header');
  const flags = file[start + 5] as number;
  let p = start + 6;
  if (flags & 0x20) p += 16;
  if (flags & 0x10) p += 4;
  const sizeBytes = 1 << (flags & 0x03);
  let chunk = 0;
  for (let i = 0; i < sizeBytes; i++) chunk += (file[p + i] as number) * 2 ** (8 * i);
  p += sizeBytes;
  const end = p + chunk;
  const headerBytes = flags & 0x04 ? 6 : 4; // creation order tracked: 2 more bytes per message
  const messages: HeaderMessage[] = [];
  while (p + headerBytes <= end) {
    const size = file.readUInt16LE(p + 1);
    messages.push({ type: file[p] as number, at: p, body: p + headerBytes, size });
    p += headerBytes + size;
  }
  return { start, end, headerBytes, messages };
}

const u64 = (v: bigint | number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};
const pad8 = (n: number): number => (n + 7) & ~7;

/**
 * The offset of the body of the contiguous Data Layout message (type 8,
 * version 3, class 1) whose raw data is `size` bytes at `dataAt`.
 */
export function contiguousLayoutAt(file: Buffer, dataAt: number, size: number): number {
  const body = Buffer.concat([Buffer.from([3, 1]), u64(dataAt), u64(size)]);
  const at = file.indexOf(body);
  if (at < 0 || file.indexOf(body, at + 1) >= 0) throw new Error(`no unique contiguous layout message for raw data at ${dataAt}`);
  const { messages } = headerMessages(file, at);
  if (!messages.some((m) => m.type === 8 && m.body === at && m.size === 18)) throw new Error('the match is not a layout message');
  return at;
}

/** Replaces the first NIL message of the header holding `inHeader` that has room by `type`/`body` and a NIL message for the rest; rewrites the checksum. */
function addMessage(file: Buffer, inHeader: number, type: number, body: Buffer): void {
  const { start, end, headerBytes, messages } = headerMessages(file, inHeader);
  const nil = messages.find((m) => m.type === 0 && m.size >= body.length + headerBytes);
  if (nil === undefined) throw new Error('no NIL message with room in this object header');
  const total = headerBytes + nil.size;
  const msg = Buffer.alloc(total);
  msg[0] = type;
  msg.writeUInt16LE(body.length, 1);
  body.copy(msg, headerBytes);
  const rest = headerBytes + body.length;
  msg[rest] = 0; // NIL message for the rest
  msg.writeUInt16LE(total - rest - headerBytes, rest + 1);
  file.set(msg, nil.at);
  file.writeUInt32LE(lookup3(file.subarray(start, end)), end);
}

/**
 * Gives the contiguous dataset whose layout body is at `layoutBody` external
 * raw storage (HDF5 `H5Pset_external`, which h5wasm does not expose): an
 * External Data Files message (type 7: version 1, one slot naming
 * `externalFile` from offset 0, `size` bytes) in a free (NIL) message of
 * its object header, its layout address set to undefined, and the local
 * heap ("HEAP", version 0) holding the file name written at `scratchAt`
 * (bytes of the file nothing else reads, e.g. the raw data of an unused
 * dataset; 48 bytes + the name).
 */
export function setExternalStorage(file: Buffer, layoutBody: number, scratchAt: number, externalFile: string, size: number): void {
  const name = Buffer.from(`${externalFile}\0`);
  const data = Buffer.alloc(8 + pad8(name.length)); // offset 0 holds the empty string, as HDF5 writes it
  name.copy(data, 8);
  const heap = Buffer.concat([Buffer.from('HEAP'), Buffer.from([0, 0, 0, 0]), u64(data.length), u64(1) /* no free block */, u64(scratchAt + 32), data]);
  file.set(heap, scratchAt);
  const efl = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from([1, 0, 1, 0]) /* 1 slot allocated, 1 used */, u64(scratchAt), u64(8), u64(0), u64(size)]);
  addMessage(file, layoutBody, 7, efl);
  file.set(u64(0xffffffffffffffffn), layoutBody + 2); // no raw data in this file
  const { start, end } = headerMessages(file, layoutBody);
  file.writeUInt32LE(lookup3(file.subarray(start, end)), end);
}

/**
 * Makes the contiguous dataset whose layout body is at `layoutBody` a
 * virtual dataset (HDF5 `H5Pset_virtual`, not in h5wasm) mapping all of
 * `sourceDataset` in `sourceFile` onto all of it: a version 4 layout of
 * class 3 pointing at a global heap collection ("GCOL", 4096 bytes,
 * written at `scratchAt`) whose object 1 is the encoded mapping (version 0,
 * one entry: names, two "all" selections, lookup3 checksum).
 */
export function setVirtualLayout(file: Buffer, layoutBody: number, scratchAt: number, sourceFile: string, sourceDataset: string): void {
  const all = Buffer.alloc(16);
  all.writeUInt32LE(3, 0); // H5S_SEL_ALL
  all.writeUInt32LE(1, 4); // version 1, then 8 bytes of padding and length 0
  const mapping = Buffer.concat([Buffer.from([0]), u64(1), Buffer.from(`${sourceFile}\0${sourceDataset}\0`), all, all]);
  const block = Buffer.concat([mapping, Buffer.alloc(4)]);
  block.writeUInt32LE(lookup3(mapping), mapping.length);
  const size = 4096;
  const obj = Buffer.alloc(16 + pad8(block.length));
  obj.writeUInt16LE(1, 0); // heap object index 1, reference count 0
  obj.set(u64(block.length), 8);
  block.copy(obj, 16);
  const free = Buffer.alloc(16);
  free.set(u64(size - 16 - obj.length), 8); // object 0: the free space, its header included
  const gcol = Buffer.alloc(size);
  Buffer.concat([Buffer.from('GCOL'), Buffer.from([1, 0, 0, 0]), u64(size), obj, free]).copy(gcol);
  file.set(gcol, scratchAt);
  const layout = Buffer.alloc(18); // the message keeps its size; the last 4 bytes are unused
  layout[0] = 4;
  layout[1] = 3;
  layout.set(u64(scratchAt), 2);
  layout.writeUInt32LE(1, 10);
  file.set(layout, layoutBody);
  const { start, end } = headerMessages(file, layoutBody);
  file.writeUInt32LE(lookup3(file.subarray(start, end)), end);
}

/** The smallest Keras functional model, Input(4) → Dense(2): the carrier of the hostile `.keras` files. */
export const denseKerasConfig: KerasModelConfig = {
  class_name: 'Functional',
  config: {
    name: 'm',
    layers: [
      { class_name: 'InputLayer', name: 'in', config: { name: 'in', batch_input_shape: [null, 4] }, inbound_nodes: [] },
      { class_name: 'Dense', name: 'd', config: { name: 'd', units: 2, use_bias: true }, inbound_nodes: [[['in', 0, 0, {}]]] },
    ],
    input_layers: [['in', 0, 0]],
    output_layers: [['d', 0, 0]],
  },
};

