// XOR-distance kernels (Kademlia): stateless sort and bucket index, and the
// resident id table used by closest/place.
//
// Ids are compared as four big-endian u64 words of `id ^ target`. Words are
// byte-swapped once when an id is stored, so the hot loops compare native
// integers; the first word is also stored with its sign bit flipped, so that
// `stored ^ bswap(target)` compares *signed* exactly as the distance compares
// unsigned, which is what the i64x2 comparisons of the SIMD build need.

/** Sign bit of a u64; XORed into the first stored word of every id. */
const SIGN: u64 = 0x8000000000000000;
/** Slots in the first chunk of an id table; later chunks double (see `chunkStart`). */
const C0: u32 = 256;
/** Bytes of one heap entry: d0 (i64, sign-flipped), d1, d2, d3 (u64), slot (u32), padding. */
const ENTRY: usize = 40;

function be64(p: usize, off: usize = 0): u64 {
  return bswap<u64>(load<u64>(p + off));
}

// ---------------------------------------------------------------------------
// Stateless: xorSort and bucketIndex

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

// ---------------------------------------------------------------------------
// Resident id table
//
// The table lives at `H` in chunks that double: chunk 0 holds slots [0, C0),
// chunk j >= 1 holds [C0 << (j - 1), C0 << j). A chunk starting at slot `s`
// with `n` slots sits at `H + 33 * s` and holds five columns: the first,
// second, third and fourth stored words (n u64 each), then n live flags. So
// adding a chunk appends memory and never moves existing ids, and the scan
// reads only the first-word column (8 bytes per id).

/** First slot of the chunk holding `slot`. */
function chunkStart(slot: u32): u32 {
  return slot < C0 ? 0 : <u32> 1 << (31 - clz(slot));
}

/** Number of slots of the chunk starting at `start`. */
function chunkSize(start: u32): u32 {
  return start == 0 ? C0 : start;
}

/** Stores the 32-byte id at `src` in `slot` and marks it live. */
export function idStore(H: usize, slot: u32, src: usize): void {
  const s = chunkStart(slot), n = <usize> chunkSize(s);
  const p = H + <usize> s * 33 + (<usize> (slot - s) << 3);
  store<u64>(p, be64(src) ^ SIGN);
  store<u64>(p + (n << 3), be64(src, 8));
  store<u64>(p + (n << 4), be64(src, 16));
  store<u64>(p + n * 24, be64(src, 24));
  store<u8>(H + <usize> s * 33 + (n << 5) + (slot - s), 1);
}

/** Copies the id in `slot` to the 32 bytes at `dst`. */
export function idLoad(H: usize, slot: u32, dst: usize): void {
  const s = chunkStart(slot), n = <usize> chunkSize(s);
  const p = H + <usize> s * 33 + (<usize> (slot - s) << 3);
  store<u64>(dst, bswap<u64>(load<u64>(p) ^ SIGN));
  store<u64>(dst, bswap<u64>(load<u64>(p + (n << 3))), 8);
  store<u64>(dst, bswap<u64>(load<u64>(p + (n << 4))), 16);
  store<u64>(dst, bswap<u64>(load<u64>(p + n * 24)), 24);
}

/** Marks `slot` dead (`live` = 0) or live. */
export function idSetLive(H: usize, slot: u32, live: u8): void {
  const s = chunkStart(slot);
  store<u8>(H + <usize> s * 33 + (<usize> chunkSize(s) << 5) + (slot - s), live);
}

/**
 * Slots of the `k` (>= 1) live ids closest to the id at `target` among slots
 * [0, high), nearest first, into `out`; returns how many (min(k, live)).
 * `heap` is scratch for k entries of 40 bytes.
 */
export function idClosest(H: usize, high: u32, target: usize, k: u32, heap: usize, out: usize): u32 {
  const count = select(H, high, target, k, heap);
  emit(heap, count, out);
  return count;
}

/**
 * Batch placement: for each of the `m` ids at `keys`, the slots of its `r`
 * (>= 1) closest live ids, nearest first, written row-major to `out`; rows
 * are min(r, live) wide, which is returned.
 */
export function idPlace(H: usize, high: u32, keys: usize, m: u32, r: u32, heap: usize, out: usize): u32 {
  let width: u32 = 0;
  for (let i: u32 = 0; i < m; i++) {
    width = select(H, high, keys + (<usize> i << 5), r, heap);
    emit(heap, width, out + <usize> i * width * 4);
  }
  return width;
}

/** Live entries in the heap during `select` (a global: `visit` updates it). */
let heapCount: u32 = 0;

/**
 * Fills `heap` with a max-heap of the `k` closest live ids (the root is the
 * farthest of them) and returns their number.
 */
function select(H: usize, high: u32, target: usize, k: u32, heap: usize): u32 {
  const t0 = be64(target), t1 = be64(target, 8), t2 = be64(target, 16), t3 = be64(target, 24);
  heapCount = 0;
  // A candidate can only enter when its first word is <= the root's; while
  // the heap is filling, everything enters.
  let thr: i64 = i64.MAX_VALUE;
  for (let start: u32 = 0; start < high;) {
    const n = chunkSize(start);
    const base = H + <usize> start * 33;
    const end = min(n, high - start);
    let i: u32 = 0;
    if (ASC_FEATURE_SIMD) {
      // Eight first words per step: a step with no candidate costs four
      // loads, XORs and compares and one branch. On a hit, only the lanes
      // that pass are offered to the heap.
      const T0 = i64x2.splat(<i64> t0);
      let THR = i64x2.splat(thr);
      for (; i + 8 <= end; i += 8) {
        const p = base + (<usize> i << 3);
        const c0 = i64x2.le_s(v128.xor(v128.load(p), T0), THR);
        const c1 = i64x2.le_s(v128.xor(v128.load(p, 16), T0), THR);
        const c2 = i64x2.le_s(v128.xor(v128.load(p, 32), T0), THR);
        const c3 = i64x2.le_s(v128.xor(v128.load(p, 48), T0), THR);
        if (v128.any_true(v128.or(v128.or(c0, c1), v128.or(c2, c3)))) {
          let m = i64x2.bitmask(c0) | (i64x2.bitmask(c1) << 2) | (i64x2.bitmask(c2) << 4) |
            (i64x2.bitmask(c3) << 6);
          while (m != 0) {
            thr = visit(base, n, i + ctz(m), start, t0, t1, t2, t3, k, heap, thr);
            m &= m - 1;
          }
          THR = i64x2.splat(thr);
        }
      }
    } else {
      for (; i + 4 <= end; i += 4) {
        const p = base + (<usize> i << 3);
        let m = <u32> (<i64> (load<u64>(p) ^ t0) <= thr) |
          (<u32> (<i64> (load<u64>(p, 8) ^ t0) <= thr) << 1) |
          (<u32> (<i64> (load<u64>(p, 16) ^ t0) <= thr) << 2) |
          (<u32> (<i64> (load<u64>(p, 24) ^ t0) <= thr) << 3);
        while (m != 0) {
          thr = visit(base, n, i + ctz(m), start, t0, t1, t2, t3, k, heap, thr);
          m &= m - 1;
        }
      }
    }
    for (; i < end; i++) thr = visit(base, n, i, start, t0, t1, t2, t3, k, heap, thr);
    start += n;
  }
  return heapCount;
}

/**
 * Offers index `i` of the chunk at `base` (`n` slots, first slot `start`) to
 * the heap; returns the new first-word threshold.
 */
function visit(
  base: usize,
  n: u32,
  i: u32,
  start: u32,
  t0: u64,
  t1: u64,
  t2: u64,
  t3: u64,
  k: u32,
  heap: usize,
  thr: i64,
): i64 {
  const p = base + (<usize> i << 3);
  const d0 = <i64> (load<u64>(p) ^ t0);
  if (d0 > thr) return thr;
  if (load<u8>(base + (<usize> n << 5) + i) == 0) return thr;
  const nb = <usize> n << 3;
  const d1 = load<u64>(p + nb) ^ t1, d2 = load<u64>(p + 2 * nb) ^ t2, d3 = load<u64>(p + 3 * nb) ^ t3;
  return offer(d0, d1, d2, d3, start + i, k, heap, thr);
}

/**
 * Offers a candidate at distance (d0 sign-flipped, d1, d2, d3) to the
 * bounded heap; returns the new first-word threshold. Candidates must arrive
 * so that equal distances come in increasing slot order (true for the slot
 * scan and for the index, where duplicates sit together in slot order), so
 * an equal distance never displaces the root.
 */
function offer(d0: i64, d1: u64, d2: u64, d3: u64, slot: u32, k: u32, heap: usize, thr: i64): i64 {
  const count = heapCount;
  if (count < k) {
    // Sift up from the new leaf, moving farther parents down.
    let h = count;
    while (h > 0) {
      const parent = (h - 1) >> 1;
      const q = heap + <usize> parent * ENTRY;
      if (!entryGreater(d0, d1, d2, d3, slot, q)) break;
      moveEntry(heap + <usize> h * ENTRY, q);
      h = parent;
    }
    putEntry(heap + <usize> h * ENTRY, d0, d1, d2, d3, slot);
    heapCount = count + 1;
    return count + 1 == k ? load<i64>(heap) : i64.MAX_VALUE;
  }
  if (!entryLess(d0, d1, d2, d3, heap)) return thr;
  siftDown(heap, count, d0, d1, d2, d3, slot);
  return load<i64>(heap);
}

/** Copies a heap entry (explicit moves: V8 compiles memory.copy as a call into the runtime). */
function moveEntry(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src));
  store<u64>(dst, load<u64>(src, 8), 8);
  store<u64>(dst, load<u64>(src, 16), 16);
  store<u64>(dst, load<u64>(src, 24), 24);
  store<u32>(dst, load<u32>(src, 32), 32);
}

function putEntry(q: usize, d0: i64, d1: u64, d2: u64, d3: u64, slot: u32): void {
  store<i64>(q, d0);
  store<u64>(q, d1, 8);
  store<u64>(q, d2, 16);
  store<u64>(q, d3, 24);
  store<u32>(q, slot, 32);
}

/** Whether the distance (d0..d3) is strictly less than that of the entry at `q`. */
function entryLess(d0: i64, d1: u64, d2: u64, d3: u64, q: usize): bool {
  const e0 = load<i64>(q);
  if (d0 != e0) return d0 < e0;
  let e = load<u64>(q, 8);
  if (d1 != e) return d1 < e;
  e = load<u64>(q, 16);
  if (d2 != e) return d2 < e;
  return d3 < load<u64>(q, 24);
}

/** Whether (d0..d3, slot) orders after the entry at `q`. */
function entryGreater(d0: i64, d1: u64, d2: u64, d3: u64, slot: u32, q: usize): bool {
  const e0 = load<i64>(q);
  if (d0 != e0) return d0 > e0;
  let e = load<u64>(q, 8);
  if (d1 != e) return d1 > e;
  e = load<u64>(q, 16);
  if (d2 != e) return d2 > e;
  e = load<u64>(q, 24);
  if (d3 != e) return d3 > e;
  return slot > load<u32>(q, 32);
}

/** Replaces the root of the `count`-entry heap by (d..., slot) and restores heap order. */
function siftDown(heap: usize, count: u32, d0: i64, d1: u64, d2: u64, d3: u64, slot: u32): void {
  let h: u32 = 0;
  for (;;) {
    let c: u32 = 2 * h + 1;
    if (c >= count) break;
    let q = heap + <usize> c * ENTRY;
    if (c + 1 < count) {
      const r = q + ENTRY;
      if (
        entryGreater(load<i64>(r), load<u64>(r, 8), load<u64>(r, 16), load<u64>(r, 24), load<u32>(r, 32), q)
      ) {
        c++;
        q = r;
      }
    }
    // Slots are distinct, so "child not below the new entry" means "child above it".
    if (entryGreater(d0, d1, d2, d3, slot, q)) break;
    moveEntry(heap + <usize> h * ENTRY, q);
    h = c;
  }
  putEntry(heap + <usize> h * ENTRY, d0, d1, d2, d3, slot);
}

/** Pops the heap in order, writing slots nearest first to `out`. */
function emit(heap: usize, count: u32, out: usize): void {
  for (let n = count; n > 0;) {
    n--;
    const q = heap;
    store<u32>(out + (<usize> n << 2), load<u32>(q, 32));
    const last = heap + <usize> n * ENTRY;
    siftDown(
      heap,
      n,
      load<i64>(last),
      load<u64>(last, 8),
      load<u64>(last, 16),
      load<u64>(last, 24),
      load<u32>(last, 32),
    );
  }
}

// ---------------------------------------------------------------------------
// Search index over the live ids
//
// A scan reads every id; the index narrows a query to a few. It holds one
// 40-byte record per live id sorted by id, then slot: the four words as
// unsigned big-endian values (the first one unflipped) and the slot; plus a
// table of 2^B + 1 offsets, `tbl[p]` being the first record whose top B bits
// are >= p. If the ids sharing the top L bits with the target number at least
// k, the k nearest are among them: every other id differs within the top L
// bits, so it is farther than all of them. A query takes the deepest such
// prefix range and runs the heap over it alone. The caller rebuilds the
// index (O(n) counting sort on the top B bits) after adds and removes.

/** Bytes of one index record. */
const REC: usize = 40;

/**
 * Builds the index of the live ids among slots [0, high) of the table at `H`
 * into `tbl` (2^B + 1 u32) and `recs` (one record per live id). Returns the
 * number of live ids.
 */
export function idIndex(H: usize, high: u32, B: u32, tbl: usize, recs: usize): u32 {
  const buckets = <u32> 1 << B;
  const shift = <u64> (64 - B);
  for (let b: u32 = 0; b <= buckets; b++) store<u32>(tbl + (<usize> b << 2), 0);
  // Count ids per prefix, shifted by one so the prefix sum gives starts.
  for (let start: u32 = 0; start < high;) {
    const n = chunkSize(start), base = H + <usize> start * 33, end = min(n, high - start);
    const flags = base + (<usize> n << 5);
    for (let i: u32 = 0; i < end; i++) {
      if (load<u8>(flags + i) == 0) continue;
      const b = <u32> ((load<u64>(base + (<usize> i << 3)) ^ SIGN) >>> shift);
      const q = tbl + (<usize> (b + 1) << 2);
      store<u32>(q, load<u32>(q) + 1);
    }
    start += n;
  }
  let sum: u32 = 0;
  for (let b: u32 = 0; b <= buckets; b++) {
    const q = tbl + (<usize> b << 2);
    sum += load<u32>(q);
    store<u32>(q, sum);
  }
  // Scatter in slot order (tbl[b] runs from the start of bucket b to the start of b + 1).
  for (let start: u32 = 0; start < high;) {
    const n = chunkSize(start), base = H + <usize> start * 33, end = min(n, high - start);
    const nb = <usize> n << 3, flags = base + (<usize> n << 5);
    for (let i: u32 = 0; i < end; i++) {
      if (load<u8>(flags + i) == 0) continue;
      const p = base + (<usize> i << 3);
      const u0 = load<u64>(p) ^ SIGN;
      const q = tbl + (<usize> <u32> (u0 >>> shift) << 2);
      const at = load<u32>(q);
      store<u32>(q, at + 1);
      const r = recs + <usize> at * REC;
      store<u64>(r, u0);
      store<u64>(r, load<u64>(p + nb), 8);
      store<u64>(r, load<u64>(p + 2 * nb), 16);
      store<u64>(r, load<u64>(p + 3 * nb), 24);
      store<u32>(r, start + i, 32);
    }
    start += n;
  }
  for (let b = buckets; b > 0; b--) {
    store<u32>(tbl + (<usize> b << 2), load<u32>(tbl + (<usize> (b - 1) << 2)));
  }
  store<u32>(tbl, 0);
  // Sort each bucket by id (insertion sort: buckets hold about one id; it is
  // stable, so equal ids stay in slot order).
  for (let b: u32 = 0; b < buckets; b++) {
    const lo = load<u32>(tbl + (<usize> b << 2)), hi = load<u32>(tbl + (<usize> (b + 1) << 2));
    for (let i = lo + 1; i < hi; i++) {
      let j = i;
      while (j > lo && recLess(recs + <usize> j * REC, recs + <usize> (j - 1) * REC)) {
        swapRec(recs + <usize> j * REC, recs + <usize> (j - 1) * REC);
        j--;
      }
    }
  }
  return sum;
}

/** Whether the id of record `a` is less than that of record `b`. */
function recLess(a: usize, b: usize): bool {
  for (let o: usize = 0; o < 32; o += 8) {
    const x = load<u64>(a + o), y = load<u64>(b + o);
    if (x != y) return x < y;
  }
  return false;
}

function swapRec(a: usize, b: usize): void {
  for (let o: usize = 0; o < REC; o += 8) {
    const x = load<u64>(a + o);
    store<u64>(a + o, load<u64>(b + o));
    store<u64>(b + o, x);
  }
}

/** Bit `bit` (0 = most significant) of the 256-bit value in words (w0, w1, w2, w3). */
function bitOf(w0: u64, w1: u64, w2: u64, w3: u64, bit: u32): u32 {
  const w = bit >>> 6;
  const x = w == 0 ? w0 : w == 1 ? w1 : w == 2 ? w2 : w3;
  return <u32> (x >>> (63 - <u64> (bit & 63))) & 1;
}

/** Like `select`, through the index (`live` >= k records). */
function selectIx(tbl: usize, B: u32, recs: usize, target: usize, k: u32, heap: usize): u32 {
  const u0 = be64(target), t1 = be64(target, 8), t2 = be64(target, 16), t3 = be64(target, 24);
  const top = <u32> (u0 >>> <u64> (64 - B));
  // The deepest prefix of the target (at most B bits) whose range holds >= k ids.
  let L = B;
  let lo: u32 = 0, hi: u32 = 0;
  for (;;) {
    const sh = B - L;
    const first = (top >>> sh) << sh;
    lo = load<u32>(tbl + (<usize> first << 2));
    hi = load<u32>(tbl + (<usize> (first + (<u32> 1 << sh)) << 2));
    if (hi - lo >= k || L == 0) break;
    L--;
  }
  // Clustered ids: keep splitting on deeper bits (binary search) while the range is large.
  if (L == B) {
    let bit = B;
    while (hi - lo > (k << 1) + 32 && bit < 256) {
      let a = lo, z = hi;
      while (a < z) {
        const mid = a + ((z - a) >>> 1);
        const r = recs + <usize> mid * REC;
        if (bitOf(load<u64>(r), load<u64>(r, 8), load<u64>(r, 16), load<u64>(r, 24), bit) == 0) a = mid + 1;
        else z = mid;
      }
      const nlo = bitOf(u0, t1, t2, t3, bit) == 0 ? lo : a;
      const nhi = bitOf(u0, t1, t2, t3, bit) == 0 ? a : hi;
      if (nhi - nlo < k) break;
      lo = nlo;
      hi = nhi;
      bit++;
    }
  }
  heapCount = 0;
  let thr: i64 = i64.MAX_VALUE;
  const f0 = u0 ^ SIGN;
  for (let i = lo; i < hi; i++) {
    const r = recs + <usize> i * REC;
    const d0 = <i64> (load<u64>(r) ^ f0);
    if (d0 > thr) continue;
    thr = offer(
      d0,
      load<u64>(r, 8) ^ t1,
      load<u64>(r, 16) ^ t2,
      load<u64>(r, 24) ^ t3,
      load<u32>(r, 32),
      k,
      heap,
      thr,
    );
  }
  return heapCount;
}

/** `idClosest` through the index built by `idIndex`. */
export function idClosestIx(
  tbl: usize,
  B: u32,
  recs: usize,
  target: usize,
  k: u32,
  heap: usize,
  out: usize,
): u32 {
  const count = selectIx(tbl, B, recs, target, k, heap);
  emit(heap, count, out);
  return count;
}

/** `idPlace` through the index built by `idIndex`. */
export function idPlaceIx(
  tbl: usize,
  B: u32,
  recs: usize,
  keys: usize,
  m: u32,
  r: u32,
  heap: usize,
  out: usize,
): u32 {
  let width: u32 = 0;
  for (let i: u32 = 0; i < m; i++) {
    width = selectIx(tbl, B, recs, keys + (<usize> i << 5), r, heap);
    emit(heap, width, out + <usize> i * width * 4);
  }
  return width;
}
