// The scalar SHA-256 compression function (FIPS 180-4): one 64-byte block
// into an 8-word state, with the 64 rounds written out. Used by every input
// of the scalar build and by the inputs the four-lane path (sha256_x4.ts)
// cannot group.

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
export function compress(st: usize, block: usize): void {
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
