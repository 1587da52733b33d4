/**
 * HPACK Huffman decoding (RFC 7541 §5.2, Appendix B). The code is canonical: codes of equal length are
 * consecutive in symbol order and each length starts where the previous one ended, shifted. So the 257 code
 * lengths of Appendix B are the whole table; the codes are rebuilt from them at load (and a unit test checks
 * them against codes printed in the RFC).
 *
 * Decoding walks a binary tree one bit at a time. Response header blocks are a few hundred bytes per
 * response, so this is not a hot path; the byte path never touches it.
 */

/** Appendix B code lengths in bits, symbols 0–255 and EOS (256). */
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,];

export const EOS = 256;

/** The canonical code of each symbol (right-aligned, `CODE_LENGTHS[sym]` bits). */
export const HUFFMAN_CODES: readonly number[] = (() => {
  const order = CODE_LENGTHS.map((len, sym) => ({ len, sym })).sort((x, y) => x.len - y.len || x.sym - y.sym);
  const codes = new Array<number>(CODE_LENGTHS.length);
  let code = 0;
  let prevLen = order[0]!.len;
  order.forEach(({ len, sym }, k) => {
    if (k > 0) code = (code + 1) * 2 ** (len - prevLen);
    prevLen = len;
    codes[sym] = code;
  });
  return codes;
})();

export const HUFFMAN_LENGTHS: readonly number[] = CODE_LENGTHS;

/**
 * The decoding tree as a flat array: node n has children at tree[2n] (bit 0) and tree[2n+1] (bit 1); a child
 * value ≥ 0 is a node index, a value < 0 is a leaf holding symbol −(value + 1). Node 0 is the root.
 */
const TREE: Int32Array = (() => {
  const children: number[] = [0, 0];
  let nodes = 1;
  for (let sym = 0; sym < CODE_LENGTHS.length; sym++) {
    const len = CODE_LENGTHS[sym]!;
    const code = HUFFMAN_CODES[sym]!;
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const b = Math.floor(code / 2 ** bit) % 2;
      const slot = 2 * node + b;
      if (bit === 0) {
        children[slot] = -(sym + 1);
      } else {
        if (children[slot] === 0) {
          children[slot] = nodes++;
          children.push(0, 0);
        }
        node = children[slot]!;
      }
    }
  }
  return Int32Array.from(children);
})();

export class HuffmanError extends Error {}

/**
 * Decodes `src[start, end)`. Padding must be the most significant bits of EOS (all ones), shorter than 8
 * bits; an EOS symbol inside the string is an error (§5.2).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number): string {
  const out: number[] = [];
  let node = 0;
  let depth = 0; // bits consumed since the last symbol
  let allOnes = true; // those bits were all 1 (valid padding so far)
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      const next = TREE[2 * node + b]!;
      depth++;
      if (b === 0) allOnes = false;
      if (next < 0) {
        const sym = -next - 1;
        if (sym === EOS) throw new HuffmanError('EOS symbol inside a Huffman-coded string');
        out.push(sym);
        node = 0;
        depth = 0;
        allOnes = true;
      } else {
        node = next;
      }
    }
  }
  if (depth > 7 || !allOnes) throw new HuffmanError('invalid padding at the end of a Huffman-coded string');
  return Buffer.from(out).toString('latin1');
}
