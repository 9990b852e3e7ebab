/**
 * SHA-256 (FIPS 180-4) in plain TypeScript for the `js` kernels.
 *
 * Written for throughput on small inputs (ids, op hashes): 32-bit integer
 * arithmetic only, one preallocated message schedule shared by every call,
 * blocks read straight from the caller's bytes at any offset, and only the
 * final one or two padded blocks copied into a scratch buffer.
 *
 * @module
 */

/** Round constants: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

/** Message schedule, reused by every block (the kernels are synchronous, so one suffices). */
const W = new Int32Array(64);
/** Chaining state H0..H7 of the message being hashed. */
const H = new Int32Array(8);
/** The last one or two blocks of a message, with padding and length appended. */
const TAIL = new Uint8Array(128);

function init(): void {
  H[0] = 0x6a09e667;
  H[1] = 0xbb67ae85;
  H[2] = 0x3c6ef372;
  H[3] = 0xa54ff53a;
  H[4] = 0x510e527f;
  H[5] = 0x9b05688c;
  H[6] = 0x1f83d9ab;
  H[7] = 0x5be0cd19;
}

/** Runs the compression function over `blocks` consecutive 64-byte blocks of `src` from `off`. */
function compress(src: Uint8Array, off: number, blocks: number): void {
  let h0 = H[0], h1 = H[1], h2 = H[2], h3 = H[3], h4 = H[4], h5 = H[5], h6 = H[6], h7 = H[7];
  for (; blocks > 0; blocks--) {
    for (let i = 0; i < 16; i++, off += 4) {
      W[i] = (src[off] << 24) | (src[off + 1] << 16) | (src[off + 2] << 8) | src[off + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = W[i - 15];
      const y = W[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      W[i] = (s1 + W[i - 7] + s0 + W[i - 16]) | 0;
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + h) | 0;
  }
  H[0] = h0;
  H[1] = h1;
  H[2] = h2;
  H[3] = h3;
  H[4] = h4;
  H[5] = h5;
  H[6] = h6;
  H[7] = h7;
}

/**
 * Writes the SHA-256 digest of `data[start..end)` to `out[outOffset..outOffset + 32)`.
 * The caller guarantees the ranges are inside the arrays.
 */
export function sha256Into(
  data: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  outOffset: number,
): void {
  init();
  const length = end - start;
  const full = Math.floor(length / 64);
  if (full > 0) compress(data, start, full);

  const rest = length - full * 64;
  const from = start + full * 64;
  for (let i = 0; i < rest; i++) TAIL[i] = data[from + i];
  TAIL[rest] = 0x80;
  // One block when the 0x80 marker and the 8-byte length still fit in it, else two.
  const blocks = rest < 56 ? 1 : 2;
  const lengthAt = blocks * 64 - 8;
  TAIL.fill(0, rest + 1, lengthAt);
  // The message length in bits as a big-endian 64-bit integer (exact up to 2^53 bits).
  const hi = Math.floor(length / 0x20000000);
  const lo = (length * 8) >>> 0;
  TAIL[lengthAt] = hi >>> 24;
  TAIL[lengthAt + 1] = hi >>> 16;
  TAIL[lengthAt + 2] = hi >>> 8;
  TAIL[lengthAt + 3] = hi;
  TAIL[lengthAt + 4] = lo >>> 24;
  TAIL[lengthAt + 5] = lo >>> 16;
  TAIL[lengthAt + 6] = lo >>> 8;
  TAIL[lengthAt + 7] = lo;
  compress(TAIL, 0, blocks);

  for (let i = 0; i < 8; i++, outOffset += 4) {
    const v = H[i];
    out[outOffset] = v >>> 24;
    out[outOffset + 1] = v >>> 16;
    out[outOffset + 2] = v >>> 8;
    out[outOffset + 3] = v;
  }
}

/**
 * SHA-256 of `data`.
 *
 * @example
 * ```ts
 * import { sha256 } from "./sha256.ts";
 * const digest = sha256(new TextEncoder().encode("abc"));
 * if (digest[0] !== 0xba || digest[31] !== 0xad) throw new Error("wrong digest");
 * ```
 */
export function sha256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  sha256Into(data, 0, data.length, out, 0);
  return out;
}

/**
 * SHA-256 of many inputs packed in `data`: input `i` is
 * `data.subarray(i === 0 ? 0 : ends[i - 1], ends[i])`, and its digest goes to
 * `out[32 * i .. 32 * i + 32)`. The caller has checked `ends` and `out`.
 *
 * @example
 * ```ts
 * import { sha256Batch } from "./sha256.ts";
 * const data = new TextEncoder().encode("abcabc");
 * const out = sha256Batch(data, new Uint32Array([3, 6]), new Uint8Array(64));
 * if (out[0] !== 0xba || out[32] !== 0xba) throw new Error("wrong digests");
 * ```
 */
export function sha256Batch(data: Uint8Array, ends: Uint32Array, out: Uint8Array): Uint8Array {
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i];
    sha256Into(data, start, end, out, i * 32);
    start = end;
  }
  return out;
}
