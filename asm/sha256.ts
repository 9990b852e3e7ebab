// SHA-256 (FIPS 180-4): one input, or a batch of inputs described by end
// offsets. The scalar build runs the plain compression per input; the SIMD
// build hashes four inputs at once (one per i32x4 lane, as ChainSafe's
// as-sha256 does) whenever four consecutive inputs have the same number of
// blocks, and falls back to the scalar compression for the rest.
//
// Files: sha256_compress.ts (the scalar rounds), sha256_pad.ts (the final
// blocks), sha256_x4.ts (four lanes).

import { compress } from "./sha256_compress";
import { blocksOf, padTail, TAIL } from "./sha256_pad";
import { hash4 } from "./sha256_x4";

/** Initial hash value. */
// deno-fmt-ignore
const IV: usize = memory.data<u32>([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** Working state of the scalar path (8 words). */
const STATE: usize = memory.data(8 * 4, 16);

/** Pads and compresses the final `rest` bytes at `p` into `st`, then writes the digest to `out`. */
function finish(st: usize, p: usize, rest: u32, bits: u64, out: usize): void {
  const tails = padTail(p, rest, bits, TAIL);
  compress(st, TAIL);
  if (tails == 2) compress(st, TAIL + 64);
  for (let j: usize = 0; j < 32; j += 4) store<u32>(out + j, bswap<u32>(load<u32>(st + j)));
}

function copyState(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src));
  store<u64>(dst, load<u64>(src, 8), 8);
  store<u64>(dst, load<u64>(src, 16), 16);
  store<u64>(dst, load<u64>(src, 24), 24);
}

/** Hashes the `len`-byte message at `p` into the 32 bytes at `out`. */
function hashOne(p: usize, len: u32, out: usize): void {
  copyState(STATE, IV);
  const full = len >>> 6;
  for (let i: u32 = 0; i < full; i++) compress(STATE, p + (<usize> i << 6));
  finish(STATE, p + (<usize> full << 6), len & 63, <u64> len << 3, out);
}

// Streaming, for inputs longer than the caller's window: init, whole blocks, final.

/** Sets the 8-word state at `state` to the initial hash value. */
export function sha256Init(state: usize): void {
  copyState(state, IV);
}

/** Compresses `blocks` whole 64-byte blocks at `p` into `state`. */
export function sha256Blocks(state: usize, p: usize, blocks: u32): void {
  for (let i: u32 = 0; i < blocks; i++) compress(state, p + (<usize> i << 6));
}

/**
 * Finishes a stream: the last `rest` (< 64) bytes are at `p`, the whole
 * message was `totalBits` long (an integer below 2^53). Digest to `out`.
 */
export function sha256Final(state: usize, p: usize, rest: u32, totalBits: f64, out: usize): void {
  finish(state, p, rest, <u64> totalBits, out);
}

/** SHA-256 of the `len` bytes at `p` into the 32 bytes at `out`. */
export function sha256(p: usize, len: u32, out: usize): void {
  hashOne(p, len, out);
}

/**
 * SHA-256 of `n` inputs: input `i` is `data[ends[i - 1] .. ends[i])` (from 0
 * for i = 0); `ends` holds n u32. Digests go back to back to `out`.
 */
export function sha256Batch(data: usize, ends: usize, n: u32, out: usize): void {
  let i: u32 = 0;
  let start: u32 = 0;
  if (ASC_FEATURE_SIMD) {
    while (i + 4 <= n) {
      const e0 = load<u32>(ends + (<usize> i << 2)), e1 = load<u32>(ends + (<usize> i << 2), 4);
      const e2 = load<u32>(ends + (<usize> i << 2), 8), e3 = load<u32>(ends + (<usize> i << 2), 12);
      const b = blocksOf(e0 - start);
      if (blocksOf(e1 - e0) == b && blocksOf(e2 - e1) == b && blocksOf(e3 - e2) == b) {
        hash4(data, start, e0, e1, e2, e3, b, out + (<usize> i << 5));
        start = e3;
        i += 4;
      } else {
        hashOne(data + start, e0 - start, out + (<usize> i << 5));
        start = e0;
        i++;
      }
    }
  }
  for (; i < n; i++) {
    const e = load<u32>(ends + (<usize> i << 2));
    hashOne(data + start, e - start, out + (<usize> i << 5));
    start = e;
  }
}
