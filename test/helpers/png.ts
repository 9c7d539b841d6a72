/** Hand-made PNG bytes for decoder tests. */
import zlib from 'node:zlib';

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A tiny PNG whose header claims width × height (a decompression bomb when decoded). */
export function pngHeaderBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const idat = zlib.deflateSync(Buffer.alloc(1 + width * 3 * 4)); // a few rows of zeros
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * A valid greyscale PNG of width × height black pixels whose IDAT is a few
 * MB even when the image is gigapixels: the zlib stream repeats one
 * sync-flushed deflate piece of `rowsPerPiece` zero rows (each piece starts
 * with a literal and then refers only to its own bytes, so the pieces can be
 * concatenated), then an empty final block and the Adler-32 of the zeros.
 */
export function pngZeros(width: number, height: number, rowsPerPiece = 64): Buffer {
  if (height % rowsPerPiece !== 0) throw new Error('height must be a multiple of rowsPerPiece');
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const piece = zlib.deflateRawSync(Buffer.alloc((1 + width) * rowsPerPiece), { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const total = (1 + width) * height;
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((total % 65521) << 16) | 1) >>> 0); // Adler-32 of `total` zero bytes
  const idat = Buffer.concat([Buffer.from([0x78, 0xda]), ...Array.from({ length: height / rowsPerPiece }, () => piece), Buffer.from([0x03, 0x00]), adler]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(idat.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(idat, zlib.crc32('IDAT')));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    len,
    Buffer.from('IDAT'),
    idat,
    crc,
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}
