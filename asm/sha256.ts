// SHA-256 (FIPS 180-4): one input, or a batch of inputs described by end
// offsets. The scalar build runs the plain compression per input; the SIMD
// build hashes four inputs at once (one per i32x4 lane, as ChainSafe's
// as-sha256 does) whenever four consecutive inputs have the same number of
// blocks, and falls back to the scalar compression for the rest.

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

/** Initial hash value. */
// deno-fmt-ignore
const IV: usize = memory.data<u32>([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** Working state of the scalar path (8 words). */
const STATE: usize = memory.data(8 * 4, 16);
/** Padded final blocks: 2 blocks for each of 4 lanes. */
const TAIL: usize = memory.data(4 * 128, 16);

// ---------------------------------------------------------------------------
// Scalar

function ror(x: u32, n: u32): u32 {
  return rotr<u32>(x, n);
}

function sig0(x: u32): u32 {
  return ror(x, 7) ^ ror(x, 18) ^ (x >>> 3);
}

function sig1(x: u32): u32 {
  return ror(x, 17) ^ ror(x, 19) ^ (x >>> 10);
}

function bigSig0(x: u32): u32 {
  return ror(x, 2) ^ ror(x, 13) ^ ror(x, 22);
}

function bigSig1(x: u32): u32 {
  return ror(x, 6) ^ ror(x, 11) ^ ror(x, 25);
}

/**
 * Compresses the 64-byte block at `block` into the 8-word state at `st`.
 *
 * The 64 rounds are written out, with the message schedule in sixteen
 * rolling locals and the round constants as immediates: in V8 this runs
 * about 30% faster than a loop over a schedule array in memory. Round t
 * renames the working variables instead of shifting them, so after eight
 * rounds they are back in place.
 */
function compress(st: usize, block: usize): void {
  let w0 = bswap<u32>(load<u32>(block, 0));
  let w1 = bswap<u32>(load<u32>(block, 4));
  let w2 = bswap<u32>(load<u32>(block, 8));
  let w3 = bswap<u32>(load<u32>(block, 12));
  let w4 = bswap<u32>(load<u32>(block, 16));
  let w5 = bswap<u32>(load<u32>(block, 20));
  let w6 = bswap<u32>(load<u32>(block, 24));
  let w7 = bswap<u32>(load<u32>(block, 28));
  let w8 = bswap<u32>(load<u32>(block, 32));
  let w9 = bswap<u32>(load<u32>(block, 36));
  let w10 = bswap<u32>(load<u32>(block, 40));
  let w11 = bswap<u32>(load<u32>(block, 44));
  let w12 = bswap<u32>(load<u32>(block, 48));
  let w13 = bswap<u32>(load<u32>(block, 52));
  let w14 = bswap<u32>(load<u32>(block, 56));
  let w15 = bswap<u32>(load<u32>(block, 60));
  let a = load<u32>(st), b = load<u32>(st, 4), c = load<u32>(st, 8), d = load<u32>(st, 12);
  let e = load<u32>(st, 16), f = load<u32>(st, 20), g = load<u32>(st, 24), h = load<u32>(st, 28);
  // round 0
  h += bigSig1(e) + (g ^ (e & (f ^ g))) + 0x428a2f98 + w0;
  d += h;
  h += bigSig0(a) + ((a & b) | (c & (a | b)));
  // round 1
  g += bigSig1(d) + (f ^ (d & (e ^ f))) + 0x71374491 + w1;
  c += g;
  g += bigSig0(h) + ((h & a) | (b & (h | a)));
  // round 2
  f += bigSig1(c) + (e ^ (c & (d ^ e))) + 0xb5c0fbcf + w2;
  b += f;
  f += bigSig0(g) + ((g & h) | (a & (g | h)));
  // round 3
  e += bigSig1(b) + (d ^ (b & (c ^ d))) + 0xe9b5dba5 + w3;
  a += e;
  e += bigSig0(f) + ((f & g) | (h & (f | g)));
  // round 4
  d += bigSig1(a) + (c ^ (a & (b ^ c))) + 0x3956c25b + w4;
  h += d;
  d += bigSig0(e) + ((e & f) | (g & (e | f)));
  // round 5
  c += bigSig1(h) + (b ^ (h & (a ^ b))) + 0x59f111f1 + w5;
  g += c;
  c += bigSig0(d) + ((d & e) | (f & (d | e)));
  // round 6
  b += bigSig1(g) + (a ^ (g & (h ^ a))) + 0x923f82a4 + w6;
  f += b;
  b += bigSig0(c) + ((c & d) | (e & (c | d)));
  // round 7
  a += bigSig1(f) + (h ^ (f & (g ^ h))) + 0xab1c5ed5 + w7;
  e += a;
  a += bigSig0(b) + ((b & c) | (d & (b | c)));
  // round 8
  h += bigSig1(e) + (g ^ (e & (f ^ g))) + 0xd807aa98 + w8;
  d += h;
  h += bigSig0(a) + ((a & b) | (c & (a | b)));
  // round 9
  g += bigSig1(d) + (f ^ (d & (e ^ f))) + 0x12835b01 + w9;
  c += g;
  g += bigSig0(h) + ((h & a) | (b & (h | a)));
  // round 10
  f += bigSig1(c) + (e ^ (c & (d ^ e))) + 0x243185be + w10;
  b += f;
  f += bigSig0(g) + ((g & h) | (a & (g | h)));
  // round 11
  e += bigSig1(b) + (d ^ (b & (c ^ d))) + 0x550c7dc3 + w11;
  a += e;
  e += bigSig0(f) + ((f & g) | (h & (f | g)));
  // round 12
  d += bigSig1(a) + (c ^ (a & (b ^ c))) + 0x72be5d74 + w12;
  h += d;
  d += bigSig0(e) + ((e & f) | (g & (e | f)));
  // round 13
  c += bigSig1(h) + (b ^ (h & (a ^ b))) + 0x80deb1fe + w13;
  g += c;
  c += bigSig0(d) + ((d & e) | (f & (d | e)));
  // round 14
  b += bigSig1(g) + (a ^ (g & (h ^ a))) + 0x9bdc06a7 + w14;
  f += b;
  b += bigSig0(c) + ((c & d) | (e & (c | d)));
  // round 15
  a += bigSig1(f) + (h ^ (f & (g ^ h))) + 0xc19bf174 + w15;
  e += a;
  a += bigSig0(b) + ((b & c) | (d & (b | c)));
  // round 16
  w0 += sig1(w14) + w9 + sig0(w1);
  h += bigSig1(e) + (g ^ (e & (f ^ g))) + 0xe49b69c1 + w0;
  d += h;
  h += bigSig0(a) + ((a & b) | (c & (a | b)));
  // round 17
  w1 += sig1(w15) + w10 + sig0(w2);
  g += bigSig1(d) + (f ^ (d & (e ^ f))) + 0xefbe4786 + w1;
  c += g;
  g += bigSig0(h) + ((h & a) | (b & (h | a)));
  // round 18
  w2 += sig1(w0) + w11 + sig0(w3);
  f += bigSig1(c) + (e ^ (c & (d ^ e))) + 0x0fc19dc6 + w2;
  b += f;
  f += bigSig0(g) + ((g & h) | (a & (g | h)));
  // round 19
  w3 += sig1(w1) + w12 + sig0(w4);
  e += bigSig1(b) + (d ^ (b & (c ^ d))) + 0x240ca1cc + w3;
  a += e;
  e += bigSig0(f) + ((f & g) | (h & (f | g)));
  // round 20
  w4 += sig1(w2) + w13 + sig0(w5);
  d += bigSig1(a) + (c ^ (a & (b ^ c))) + 0x2de92c6f + w4;
  h += d;
  d += bigSig0(e) + ((e & f) | (g & (e | f)));
  // round 21
  w5 += sig1(w3) + w14 + sig0(w6);
  c += bigSig1(h) + (b ^ (h & (a ^ b))) + 0x4a7484aa + w5;
  g += c;
  c += bigSig0(d) + ((d & e) | (f & (d | e)));
  // round 22
  w6 += sig1(w4) + w15 + sig0(w7);
  b += bigSig1(g) + (a ^ (g & (h ^ a))) + 0x5cb0a9dc + w6;
  f += b;
  b += bigSig0(c) + ((c & d) | (e & (c | d)));
  // round 23
  w7 += sig1(w5) + w0 + sig0(w8);
  a += bigSig1(f) + (h ^ (f & (g ^ h))) + 0x76f988da + w7;
  e += a;
  a += bigSig0(b) + ((b & c) | (d & (b | c)));
  // round 24
  w8 += sig1(w6) + w1 + sig0(w9);
  h += bigSig1(e) + (g ^ (e & (f ^ g))) + 0x983e5152 + w8;
  d += h;
  h += bigSig0(a) + ((a & b) | (c & (a | b)));
  // round 25
  w9 += sig1(w7) + w2 + sig0(w10);
  g += bigSig1(d) + (f ^ (d & (e ^ f))) + 0xa831c66d + w9;
  c += g;
  g += bigSig0(h) + ((h & a) | (b & (h | a)));
  // round 26
  w10 += sig1(w8) + w3 + sig0(w11);
  f += bigSig1(c) + (e ^ (c & (d ^ e))) + 0xb00327c8 + w10;
  b += f;
  f += bigSig0(g) + ((g & h) | (a & (g | h)));
  // round 27
  w11 += sig1(w9) + w4 + sig0(w12);
  e += bigSig1(b) + (d ^ (b & (c ^ d))) + 0xbf597fc7 + w11;
  a += e;
  e += bigSig0(f) + ((f & g) | (h & (f | g)));
  // round 28
  w12 += sig1(w10) + w5 + sig0(w13);
  d += bigSig1(a) + (c ^ (a & (b ^ c))) + 0xc6e00bf3 + w12;
  h += d;
  d += bigSig0(e) + ((e & f) | (g & (e | f)));
  // round 29
  w13 += sig1(w11) + w6 + sig0(w14);
  c += bigSig1(h) + (b ^ (h & (a ^ b))) + 0xd5a79147 + w13;
  g += c;
  c += bigSig0(d) + ((d & e) | (f & (d | e)));
  // round 30
  w14 += sig1(w12) + w7 + sig0(w15);
  b += bigSig1(g) + (a ^ (g & (h ^ a))) + 0x06ca6351 + w14;
  f += b;
  b += bigSig0(c) + ((c & d) | (e & (c | d)));
  // round 31
  w15 += sig1(w13) + w8 + sig0(w0);
  a += bigSig1(f) + (h ^ (f & (g ^ h))) + 0x14292967 + w15;
  e += a;
  a += bigSig0(b) + ((b & c) | (d & (b | c)));
  // round 32
  w0 += sig1(w14) + w9 + sig0(w1);
  h += bigSig1(e) + (g ^ (e & (f ^ g))) + 0x27b70a85 + w0;
  d += h;
  h += bigSig0(a) + ((a & b) | (c & (a | b)));
  // round 33
  w1 += sig1(w15) + w10 + sig0(w2);
  g += bigSig1(d) + (f ^ (d & (e ^ f))) + 0x2e1b2138 + w1;
  c += g;
  g += bigSig0(h) + ((h & a) | (b & (h | a)));
  // round 34
  w2 += sig1(w0) + w11 + sig0(w3);
  f += bigSig1(c) + (e ^ (c & (d ^ e))) + 0x4d2c6dfc + w2;
  b += f;
  f += bigSig0(g) + ((g & h) | (a & (g | h)));
  // round 35
  w3 += sig1(w1) + w12 + sig0(w4);
  e += bigSig1(b) + (d ^ (b & (c ^ d))) + 0x53380d13 + w3;
  a += e;
  e += bigSig0(f) + ((f & g) | (h & (f | g)));
  // round 36
  w4 += sig1(w2) + w13 + sig0(w5);
  d += bigSig1(a) + (c ^ (a & (b ^ c))) + 0x650a7354 + w4;
  h += d;
  d += bigSig0(e) + ((e & f) | (g & (e | f)));
  // round 37
  w5 += sig1(w3) + w14 + sig0(w6);
  c += bigSig1(h) + (b ^ (h & (a ^ b))) + 0x766a0abb + w5;
  g += c;
  c += bigSig0(d) + ((d & e) | (f & (d | e)));
  // round 38
  w6 += sig1(w4) + w15 + sig0(w7);
  b += bigSig1(g) + (a ^ (g & (h ^ a))) + 0x81c2c92e + w6;
  f += b;
  b += bigSig0(c) + ((c & d) | (e & (c | d)));
  // round 39
  w7 += sig1(w5) + w0 + sig0(w8);
  a += bigSig1(f) + (h ^ (f & (g ^ h))) + 0x92722c85 + w7;
  e += a;
  a += bigSig0(b) + ((b & c) | (d & (b | c)));
  // round 40
  w8 += sig1(w6) + w1 + sig0(w9);
  h += bigSig1(e) + (g ^ (e & (f ^ g))) + 0xa2bfe8a1 + w8;
  d += h;
  h += bigSig0(a) + ((a & b) | (c & (a | b)));
  // round 41
  w9 += sig1(w7) + w2 + sig0(w10);
  g += bigSig1(d) + (f ^ (d & (e ^ f))) + 0xa81a664b + w9;
  c += g;
  g += bigSig0(h) + ((h & a) | (b & (h | a)));
  // round 42
  w10 += sig1(w8) + w3 + sig0(w11);
  f += bigSig1(c) + (e ^ (c & (d ^ e))) + 0xc24b8b70 + w10;
  b += f;
  f += bigSig0(g) + ((g & h) | (a & (g | h)));
  // round 43
  w11 += sig1(w9) + w4 + sig0(w12);
  e += bigSig1(b) + (d ^ (b & (c ^ d))) + 0xc76c51a3 + w11;
  a += e;
  e += bigSig0(f) + ((f & g) | (h & (f | g)));
  // round 44
  w12 += sig1(w10) + w5 + sig0(w13);
  d += bigSig1(a) + (c ^ (a & (b ^ c))) + 0xd192e819 + w12;
  h += d;
  d += bigSig0(e) + ((e & f) | (g & (e | f)));
  // round 45
  w13 += sig1(w11) + w6 + sig0(w14);
  c += bigSig1(h) + (b ^ (h & (a ^ b))) + 0xd6990624 + w13;
  g += c;
  c += bigSig0(d) + ((d & e) | (f & (d | e)));
  // round 46
  w14 += sig1(w12) + w7 + sig0(w15);
  b += bigSig1(g) + (a ^ (g & (h ^ a))) + 0xf40e3585 + w14;
  f += b;
  b += bigSig0(c) + ((c & d) | (e & (c | d)));
  // round 47
  w15 += sig1(w13) + w8 + sig0(w0);
  a += bigSig1(f) + (h ^ (f & (g ^ h))) + 0x106aa070 + w15;
  e += a;
  a += bigSig0(b) + ((b & c) | (d & (b | c)));
  // round 48
  w0 += sig1(w14) + w9 + sig0(w1);
  h += bigSig1(e) + (g ^ (e & (f ^ g))) + 0x19a4c116 + w0;
  d += h;
  h += bigSig0(a) + ((a & b) | (c & (a | b)));
  // round 49
  w1 += sig1(w15) + w10 + sig0(w2);
  g += bigSig1(d) + (f ^ (d & (e ^ f))) + 0x1e376c08 + w1;
  c += g;
  g += bigSig0(h) + ((h & a) | (b & (h | a)));
  // round 50
  w2 += sig1(w0) + w11 + sig0(w3);
  f += bigSig1(c) + (e ^ (c & (d ^ e))) + 0x2748774c + w2;
  b += f;
  f += bigSig0(g) + ((g & h) | (a & (g | h)));
  // round 51
  w3 += sig1(w1) + w12 + sig0(w4);
  e += bigSig1(b) + (d ^ (b & (c ^ d))) + 0x34b0bcb5 + w3;
  a += e;
  e += bigSig0(f) + ((f & g) | (h & (f | g)));
  // round 52
  w4 += sig1(w2) + w13 + sig0(w5);
  d += bigSig1(a) + (c ^ (a & (b ^ c))) + 0x391c0cb3 + w4;
  h += d;
  d += bigSig0(e) + ((e & f) | (g & (e | f)));
  // round 53
  w5 += sig1(w3) + w14 + sig0(w6);
  c += bigSig1(h) + (b ^ (h & (a ^ b))) + 0x4ed8aa4a + w5;
  g += c;
  c += bigSig0(d) + ((d & e) | (f & (d | e)));
  // round 54
  w6 += sig1(w4) + w15 + sig0(w7);
  b += bigSig1(g) + (a ^ (g & (h ^ a))) + 0x5b9cca4f + w6;
  f += b;
  b += bigSig0(c) + ((c & d) | (e & (c | d)));
  // round 55
  w7 += sig1(w5) + w0 + sig0(w8);
  a += bigSig1(f) + (h ^ (f & (g ^ h))) + 0x682e6ff3 + w7;
  e += a;
  a += bigSig0(b) + ((b & c) | (d & (b | c)));
  // round 56
  w8 += sig1(w6) + w1 + sig0(w9);
  h += bigSig1(e) + (g ^ (e & (f ^ g))) + 0x748f82ee + w8;
  d += h;
  h += bigSig0(a) + ((a & b) | (c & (a | b)));
  // round 57
  w9 += sig1(w7) + w2 + sig0(w10);
  g += bigSig1(d) + (f ^ (d & (e ^ f))) + 0x78a5636f + w9;
  c += g;
  g += bigSig0(h) + ((h & a) | (b & (h | a)));
  // round 58
  w10 += sig1(w8) + w3 + sig0(w11);
  f += bigSig1(c) + (e ^ (c & (d ^ e))) + 0x84c87814 + w10;
  b += f;
  f += bigSig0(g) + ((g & h) | (a & (g | h)));
  // round 59
  w11 += sig1(w9) + w4 + sig0(w12);
  e += bigSig1(b) + (d ^ (b & (c ^ d))) + 0x8cc70208 + w11;
  a += e;
  e += bigSig0(f) + ((f & g) | (h & (f | g)));
  // round 60
  w12 += sig1(w10) + w5 + sig0(w13);
  d += bigSig1(a) + (c ^ (a & (b ^ c))) + 0x90befffa + w12;
  h += d;
  d += bigSig0(e) + ((e & f) | (g & (e | f)));
  // round 61
  w13 += sig1(w11) + w6 + sig0(w14);
  c += bigSig1(h) + (b ^ (h & (a ^ b))) + 0xa4506ceb + w13;
  g += c;
  c += bigSig0(d) + ((d & e) | (f & (d | e)));
  // round 62
  w14 += sig1(w12) + w7 + sig0(w15);
  b += bigSig1(g) + (a ^ (g & (h ^ a))) + 0xbef9a3f7 + w14;
  f += b;
  b += bigSig0(c) + ((c & d) | (e & (c | d)));
  // round 63
  w15 += sig1(w13) + w8 + sig0(w0);
  a += bigSig1(f) + (h ^ (f & (g ^ h))) + 0xc67178f2 + w15;
  e += a;
  a += bigSig0(b) + ((b & c) | (d & (b | c)));
  store<u32>(st, load<u32>(st, 0) + a, 0);
  store<u32>(st, load<u32>(st, 4) + b, 4);
  store<u32>(st, load<u32>(st, 8) + c, 8);
  store<u32>(st, load<u32>(st, 12) + d, 12);
  store<u32>(st, load<u32>(st, 16) + e, 16);
  store<u32>(st, load<u32>(st, 20) + f, 20);
  store<u32>(st, load<u32>(st, 24) + g, 24);
  store<u32>(st, load<u32>(st, 28) + h, 28);
}

/** Number of 64-byte blocks of a padded message of `len` bytes. */
function blocksOf(len: u32): u32 {
  return (len + 72) >>> 6;
}

/**
 * Writes the final (padded) block(s) of a message to `tail`: the `rest`
 * (< 64) bytes at `p` after the last whole block, 0x80, zeros and the
 * message length `bits`. Returns the number of tail blocks (1 or 2).
 */
function padTail(p: usize, rest: u32, bits: u64, tail: usize): u32 {
  const blocks: u32 = rest < 56 ? 1 : 2;
  // Explicit stores: V8 compiles memory.fill/copy as calls into the runtime,
  // which would cost more than the padding itself.
  const bytes = <usize> blocks << 6;
  for (let o: usize = 0; o < bytes; o += 8) store<u64>(tail + o, 0);
  let o: usize = 0;
  for (; o + 8 <= <usize> rest; o += 8) store<u64>(tail + o, load<u64>(p + o));
  for (; o < <usize> rest; o++) store<u8>(tail + o, load<u8>(p + o));
  store<u8>(tail + rest, 0x80);
  store<u64>(tail + (<usize> blocks << 6) - 8, bswap<u64>(bits));
  return blocks;
}

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

// ---------------------------------------------------------------------------
// SIMD: four messages of equal block count, one per lane

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

function hash4(data: usize, s0: u32, e0: u32, e1: u32, e2: u32, e3: u32, blocks: u32, out: usize): void {
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
