// XOR-distance kernels (Kademlia), stateless: sort ids by distance to a
// target, and the k-bucket index of each id. The resident id table that
// answers closest/place is in id_table.ts (its heap in id_heap.ts, its search
// index in id_index.ts).
//
// Ids are compared as four big-endian u64 words of `id ^ target`. The id
// table byte-swaps words once when an id is stored, so its hot loops compare
// native integers; the first word is also stored with its sign bit flipped,
// so that `stored ^ bswap(target)` compares *signed* exactly as the distance
// compares unsigned, which is what the i64x2 comparisons of the SIMD build
// need.

/** Sign bit of a u64; XORed into the first stored word of every id. */
export const SIGN: u64 = 0x8000000000000000;

/** The big-endian u64 at `p + off`. */
export function be64(p: usize, off: usize = 0): u64 {
  return bswap<u64>(load<u64>(p + off));
}

/**
 * Sorts the indices 0..n-1 of the `n` ids at `ids` by XOR distance to the id at
 * `target` (ties: lower index first) into `out` (n u32). Scratch: `d` (n u64),
 * `tmp` (n u32) and `tbl` (2^B + 1 u32).
 *
 * A counting sort on the top B bits of the first distance word (stable, so
 * indices stay in order within a bucket), then each bucket sorted on the
 * full distance: about one id per bucket for random ids, so O(n) work; a
 * large bucket (clustered ids) gets the merge sort.
 */
export function xorSort(
  ids: usize,
  n: u32,
  target: usize,
  out: usize,
  d: usize,
  tmp: usize,
  tbl: usize,
  B: u32,
): void {
  const t0 = be64(target);
  const buckets = <u32> 1 << B;
  const shift = <u64> (64 - B);
  for (let b: u32 = 0; b <= buckets; b++) store<u32>(tbl + (<usize> b << 2), 0);
  for (let i: u32 = 0; i < n; i++) {
    const d0 = be64(ids + (<usize> i << 5)) ^ t0;
    store<u64>(d + (<usize> i << 3), d0);
    const q = tbl + (<usize> (<u32> (d0 >>> shift) + 1) << 2);
    store<u32>(q, load<u32>(q) + 1);
  }
  let sum: u32 = 0;
  for (let b: u32 = 0; b <= buckets; b++) {
    const q = tbl + (<usize> b << 2);
    sum += load<u32>(q);
    store<u32>(q, sum);
  }
  for (let i: u32 = 0; i < n; i++) {
    const q = tbl + (<usize> <u32> (load<u64>(d + (<usize> i << 3)) >>> shift) << 2);
    const at = load<u32>(q);
    store<u32>(q, at + 1);
    store<u32>(out + (<usize> at << 2), i);
  }
  // Now tbl[b] is the end of bucket b.
  let lo: u32 = 0;
  for (let b: u32 = 0; b < buckets; b++) {
    const hi = load<u32>(tbl + (<usize> b << 2));
    if (hi - lo > 1) sortRange(ids, target, d, out, tmp, lo, hi);
    lo = hi;
  }
}

/**
 * Stable sort of `out[lo..hi)` by distance: insertion-sorted runs of 16,
 * then bottom-up merging between `out` and `tmp`.
 */
function sortRange(ids: usize, target: usize, d: usize, out: usize, tmp: usize, lo: u32, hi: u32): void {
  const RUN: u32 = 16;
  for (let r = lo; r < hi; r += RUN) {
    const end = min(r + RUN, hi);
    for (let i = r + 1; i < end; i++) {
      const x = load<u32>(out + (<usize> i << 2));
      let j = i;
      while (j > r) {
        const y = load<u32>(out + (<usize> (j - 1) << 2));
        if (!xorLess(ids, target, d, x, y)) break;
        store<u32>(out + (<usize> j << 2), y);
        j--;
      }
      store<u32>(out + (<usize> j << 2), x);
    }
  }
  let src = out, dst = tmp;
  for (let width = RUN; width < hi - lo; width <<= 1) {
    for (let a = lo; a < hi; a += width << 1) {
      const mid = min(a + width, hi), end = min(a + (width << 1), hi);
      let i = <usize> a, j = <usize> mid, k = <usize> a;
      while (i < mid && j < end) {
        const x = load<u32>(src + (i << 2)), y = load<u32>(src + (j << 2));
        if (xorLess(ids, target, d, y, x)) {
          store<u32>(dst + (k << 2), y);
          j++;
        } else {
          store<u32>(dst + (k << 2), x);
          i++;
        }
        k++;
      }
      for (; i < mid; i++, k++) store<u32>(dst + (k << 2), load<u32>(src + (i << 2)));
      for (; j < end; j++, k++) store<u32>(dst + (k << 2), load<u32>(src + (j << 2)));
    }
    const s = src;
    src = dst;
    dst = s;
  }
  if (src != out) {
    for (let i = <usize> lo; i < hi; i++) store<u32>(out + (i << 2), load<u32>(src + (i << 2)));
  }
}

/** Whether id `x` is strictly closer to the target than id `y` (distance only). */
function xorLess(ids: usize, target: usize, d: usize, x: u32, y: u32): bool {
  const dx = load<u64>(d + (<usize> x << 3)), dy = load<u64>(d + (<usize> y << 3));
  if (dx != dy) return dx < dy;
  return restLess(ids, target, x, y);
}

function restLess(ids: usize, target: usize, x: u32, y: u32): bool {
  const px = ids + (<usize> x << 5), py = ids + (<usize> y << 5);
  for (let off: usize = 8; off < 32; off += 8) {
    const t = be64(target, off);
    const a = be64(px, off) ^ t, b = be64(py, off) ^ t;
    if (a != b) return a < b;
  }
  return false;
}

/** For each of the `n` ids at `ids`, its common prefix length in bits with `self`, as u16 into `out`. */
export function bucketIndex(ids: usize, n: u32, self: usize, out: usize): void {
  const s0 = load<u64>(self), s1 = load<u64>(self, 8), s2 = load<u64>(self, 16), s3 = load<u64>(self, 24);
  for (let i: u32 = 0; i < n; i++) {
    const p = ids + (<usize> i << 5);
    let x = load<u64>(p) ^ s0;
    let prefix: u32 = 256;
    if (x != 0) prefix = prefixBits(x);
    else if ((x = load<u64>(p, 8) ^ s1) != 0) prefix = 64 + prefixBits(x);
    else if ((x = load<u64>(p, 16) ^ s2) != 0) prefix = 128 + prefixBits(x);
    else if ((x = load<u64>(p, 24) ^ s3) != 0) prefix = 192 + prefixBits(x);
    store<u16>(out + (<usize> i << 1), <u16> prefix);
  }
}

/**
 * Leading equal bits of 8 bytes whose XOR, read little-endian, is `x` (not 0):
 * the first differing byte is the lowest non-zero one, then the leading zeros
 * within it. Cheaper than a 64-bit byte swap, which wasm lacks.
 */
function prefixBits(x: u64): u32 {
  const byte = <u32> ctz(x) & ~7;
  return byte + clz(<u32> (x >>> <u64> byte) & 0xff) - 24;
}
