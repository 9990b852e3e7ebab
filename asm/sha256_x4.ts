// SHA-256 of four messages of equal block count at once, one per i32x4 lane
// (as ChainSafe's as-sha256 does): the SIMD build's path for batches of
// small inputs (sha256Batch in sha256.ts).

import { padTail, TAIL } from "./sha256_pad";

/** Round constants, for the SIMD path (the scalar rounds have them as immediates). */
// deno-fmt-ignore
const K: usize = memory.data<u32>([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Round constants splatted to four lanes (filled at instantiation). */
const K4: usize = memory.data(64 * 16, 16);
/** Message schedule of the four-lane compression (64 vectors). */
const W4: usize = memory.data(64 * 16, 16);

if (ASC_FEATURE_SIMD) {
  for (let t: usize = 0; t < 64; t++) v128.store(K4 + (t << 4), i32x4.splat(load<u32>(K + (t << 2))));
}

function rotr4(x: v128, n: u32): v128 {
  return v128.or(i32x4.shr_u(x, n), i32x4.shl(x, 32 - n));
}

/** Pointer to block `j` of a message at `p` with `full` whole blocks whose padded tail is at `tail`. */
function blockPtr(p: usize, full: u32, tail: usize, j: u32): usize {
  return j < full ? p + (<usize> j << 6) : tail + (<usize> (j - full) << 6);
}

export function hash4(
  data: usize,
  s0: u32,
  e0: u32,
  e1: u32,
  e2: u32,
  e3: u32,
  blocks: u32,
  out: usize,
): void {
  const p0 = data + s0, p1 = data + e0, p2 = data + e1, p3 = data + e2;
  const f0 = (e0 - s0) >>> 6, f1 = (e1 - e0) >>> 6, f2 = (e2 - e1) >>> 6, f3 = (e3 - e2) >>> 6;
  padTail(p0 + (<usize> f0 << 6), (e0 - s0) & 63, <u64> (e0 - s0) << 3, TAIL);
  padTail(p1 + (<usize> f1 << 6), (e1 - e0) & 63, <u64> (e1 - e0) << 3, TAIL + 128);
  padTail(p2 + (<usize> f2 << 6), (e2 - e1) & 63, <u64> (e2 - e1) << 3, TAIL + 256);
  padTail(p3 + (<usize> f3 << 6), (e3 - e2) & 63, <u64> (e3 - e2) << 3, TAIL + 384);
  let sa = i32x4.splat(<i32> 0x6a09e667), sb = i32x4.splat(<i32> 0xbb67ae85);
  let sc = i32x4.splat(<i32> 0x3c6ef372), sd = i32x4.splat(<i32> 0xa54ff53a);
  let se = i32x4.splat(<i32> 0x510e527f), sf = i32x4.splat(<i32> 0x9b05688c);
  let sg = i32x4.splat(<i32> 0x1f83d9ab), sh = i32x4.splat(<i32> 0x5be0cd19);
  for (let j: u32 = 0; j < blocks; j++) {
    const q0 = blockPtr(p0, f0, TAIL, j), q1 = blockPtr(p1, f1, TAIL + 128, j);
    const q2 = blockPtr(p2, f2, TAIL + 256, j), q3 = blockPtr(p3, f3, TAIL + 384, j);
    // Load 4 words of each lane, byte-swap and transpose them in two shuffle steps.
    for (let o: usize = 0; o < 64; o += 16) {
      const r0 = v128.load(q0 + o), r1 = v128.load(q1 + o), r2 = v128.load(q2 + o), r3 = v128.load(q3 + o);
      const t0 = i8x16.shuffle(r0, r1, 3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20);
      const t1 = i8x16.shuffle(r0, r1, 11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28);
      const t2 = i8x16.shuffle(r2, r3, 3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20);
      const t3 = i8x16.shuffle(r2, r3, 11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28);
      const w = W4 + (o << 2);
      v128.store(w, i64x2.shuffle(t0, t2, 0, 2));
      v128.store(w, i64x2.shuffle(t0, t2, 1, 3), 16);
      v128.store(w, i64x2.shuffle(t1, t3, 0, 2), 32);
      v128.store(w, i64x2.shuffle(t1, t3, 1, 3), 48);
    }
    for (let t: usize = 16; t < 64; t++) {
      const w15 = v128.load(W4 + ((t - 15) << 4)), w2 = v128.load(W4 + ((t - 2) << 4));
      const x0 = v128.xor(v128.xor(rotr4(w15, 7), rotr4(w15, 18)), i32x4.shr_u(w15, 3));
      const x1 = v128.xor(v128.xor(rotr4(w2, 17), rotr4(w2, 19)), i32x4.shr_u(w2, 10));
      const sum = i32x4.add(
        i32x4.add(x1, v128.load(W4 + ((t - 7) << 4))),
        i32x4.add(x0, v128.load(W4 + ((t - 16) << 4))),
      );
      v128.store(W4 + (t << 4), sum);
    }
    let a = sa, b = sb, c = sc, d = sd, e = se, f = sf, g = sg, h = sh;
    for (let t: usize = 0; t < 1024; t += 16) {
      const s1 = v128.xor(v128.xor(rotr4(e, 6), rotr4(e, 11)), rotr4(e, 25));
      const ch = v128.bitselect(f, g, e);
      const t1 = i32x4.add(i32x4.add(i32x4.add(h, s1), i32x4.add(ch, v128.load(K4 + t))), v128.load(W4 + t));
      const s0 = v128.xor(v128.xor(rotr4(a, 2), rotr4(a, 13)), rotr4(a, 22));
      const maj = v128.bitselect(c, a, v128.xor(a, b));
      h = g;
      g = f;
      f = e;
      e = i32x4.add(d, t1);
      d = c;
      c = b;
      b = a;
      a = i32x4.add(t1, i32x4.add(s0, maj));
    }
    sa = i32x4.add(sa, a);
    sb = i32x4.add(sb, b);
    sc = i32x4.add(sc, c);
    sd = i32x4.add(sd, d);
    se = i32x4.add(se, e);
    sf = i32x4.add(sf, f);
    sg = i32x4.add(sg, g);
    sh = i32x4.add(sh, h);
  }
  // Transpose back: lane L of vectors a..h is digest L; byte-swap on the way.
  store4(sa, sb, sc, sd, out);
  store4(se, sf, sg, sh, out + 16);
}

/** Stores word j of lanes 0..3 of (w0, w1, w2, w3) big-endian at out + 32*lane + 4*j. */
function store4(w0: v128, w1: v128, w2: v128, w3: v128, out: usize): void {
  const t0 = i8x16.shuffle(w0, w1, 3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20);
  const t1 = i8x16.shuffle(w0, w1, 11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28);
  const t2 = i8x16.shuffle(w2, w3, 3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20);
  const t3 = i8x16.shuffle(w2, w3, 11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28);
  v128.store(out, i64x2.shuffle(t0, t2, 0, 2));
  v128.store(out + 32, i64x2.shuffle(t0, t2, 1, 3));
  v128.store(out + 64, i64x2.shuffle(t1, t3, 0, 2));
  v128.store(out + 96, i64x2.shuffle(t1, t3, 1, 3));
}
