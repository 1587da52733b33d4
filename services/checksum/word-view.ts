/**
 * 32-bit word access to a byte buffer for the checksum hot loops: one typed-array load instead of
 * four byte loads (and four bounds checks) is what lifts pure-JS adler32/crc32c from ~1 GB/s.
 *
 * The Int32Array view spans the buffer's whole ArrayBuffer and is cached per ArrayBuffer (weakly),
 * so recycled read buffers and Node's pooled Buffers get no allocation per call. Words are read in
 * the platform's byte order, so callers must take the word path only when LITTLE_ENDIAN.
 */

export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const views = new WeakMap<ArrayBufferLike, Int32Array>();

/** Word view of `buf.buffer`, covering at least up to byte `buf.byteOffset + end`. Word k = bytes [4k, 4k+4). */
export function wordView(buf: Uint8Array, end: number): Int32Array {
  const ab = buf.buffer;
  let view = views.get(ab);
  // A view made before a resizable/growable buffer grew is too short: make a fresh one.
  if (!view || view.length * 4 < buf.byteOffset + end - 3) {
    view = new Int32Array(ab, 0, ab.byteLength >>> 2);
    views.set(ab, view);
  }
  return view;
}
