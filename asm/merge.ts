// HAM merge: decide many (incumbent, incoming) field pairs at once.
//
// A batch is twelve u32 columns followed by a byte column `out`: a.hlcHi,
// a.hlcLo, a.hashHi, a.hashLo, a.actorHi, a.actorLo, then the same six for b,
// each `stride` bytes apart. `b` wins a pair when its six-word tuple is
// lexicographically greater (unsigned); an equal tuple keeps `a`.
//
// Branchless, folding the columns from the last to the first:
// `won = gt(b, a) | (eq(b, a) & won)`. Every column is read (the data is
// streamed once, at memory bandwidth); measured against an early exit per
// group of pairs, the data-dependent branches cost more than the columns
// they skip on realistic clocks, where ties reach the hash and actor words.

/** Decides pairs [0, length) of the batch at `base` into the byte column at `out`. */
export function merge(base: usize, stride: usize, out: usize, length: u32): void {
  const last = stride * 5, bOff = stride * 6;
  let i: u32 = 0;
  if (ASC_FEATURE_SIMD) {
    // 16 pairs per step: four i32x4 vectors per column, one cache line each.
    const one = i8x16.splat(1);
    for (; i + 16 <= length; i += 16) {
      let pa = base + (<usize> i << 2) + last, pb = pa + bOff;
      let w0 = i32x4.gt_u(v128.load(pb), v128.load(pa));
      let w1 = i32x4.gt_u(v128.load(pb, 16), v128.load(pa, 16));
      let w2 = i32x4.gt_u(v128.load(pb, 32), v128.load(pa, 32));
      let w3 = i32x4.gt_u(v128.load(pb, 48), v128.load(pa, 48));
      for (let col = 0; col < 5; col++) {
        pa -= stride;
        pb -= stride;
        let x = v128.load(pa), y = v128.load(pb);
        w0 = v128.or(i32x4.gt_u(y, x), v128.and(i32x4.eq(y, x), w0));
        x = v128.load(pa, 16);
        y = v128.load(pb, 16);
        w1 = v128.or(i32x4.gt_u(y, x), v128.and(i32x4.eq(y, x), w1));
        x = v128.load(pa, 32);
        y = v128.load(pb, 32);
        w2 = v128.or(i32x4.gt_u(y, x), v128.and(i32x4.eq(y, x), w2));
        x = v128.load(pa, 48);
        y = v128.load(pb, 48);
        w3 = v128.or(i32x4.gt_u(y, x), v128.and(i32x4.eq(y, x), w3));
      }
      // Masks are 0 or -1 per lane: narrowing with signed saturation keeps that, bytes of -1 become 1.
      const bytes = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(w0, w1), i16x8.narrow_i32x4_s(w2, w3));
      v128.store(out + i, v128.and(bytes, one));
    }
  }
  for (; i < length; i++) {
    let pa = base + (<usize> i << 2) + last, pb = pa + bOff;
    let won = <u32> (load<u32>(pb) > load<u32>(pa));
    for (let col = 0; col < 5; col++) {
      pa -= stride;
      pb -= stride;
      const x = load<u32>(pa), y = load<u32>(pb);
      won = <u32> (y > x) | (<u32> (y == x) & won);
    }
    store<u8>(out + i, <u8> won);
  }
}
