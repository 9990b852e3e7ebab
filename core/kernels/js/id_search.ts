/**
 * The k-nearest searches of the `js` id table by XOR distance: a bounded
 * max-heap over a full scan (`nearest`), and the same over one prefix range
 * of the sorted search index (`buildIndex`, `nearestIndexed`), the twin of
 * `idIndex`/`idClosestIx` in `asm/id_index.ts`.
 *
 * Plain functions over typed arrays passed in, so the table's hot loops see
 * no property lookups and allocate nothing.
 *
 * @module
 */
import { ID_WORDS } from "./xor.ts";

/** Whether id slot `x` (sign-flipped first distance word `kx`) is farther from `t` than slot `y` (`ky`). */
function farther(words: Int32Array, t: Int32Array, kx: number, x: number, ky: number, y: number): boolean {
  if (kx !== ky) return kx > ky;
  for (let w = 1, xo = x * ID_WORDS, yo = y * ID_WORDS; w < ID_WORDS; w++) {
    const dx = words[xo + w] ^ t[w];
    const dy = words[yo + w] ^ t[w];
    if (dx !== dy) return (dx >>> 0) > (dy >>> 0);
  }
  return x > y;
}

/** Restores the max-heap (farthest at the root) of `count` slots after the root changed. */
function siftDownFarthest(
  words: Int32Array,
  t: Int32Array,
  heap: Uint32Array,
  key: Int32Array,
  count: number,
): void {
  const s = heap[0], ks = key[0];
  let i = 0;
  for (;;) {
    let c = 2 * i + 1;
    if (c >= count) break;
    if (c + 1 < count && farther(words, t, key[c + 1], heap[c + 1], key[c], heap[c])) c++;
    if (!farther(words, t, key[c], heap[c], ks, s)) break;
    heap[i] = heap[c];
    key[i] = key[c];
    i = c;
  }
  heap[i] = s;
  key[i] = ks;
}

/** Inserts slot `s` (sign-flipped first distance word `d0`) as entry `count` of the max-heap, sifting it up. */
function pushFarthest(
  words: Int32Array,
  t: Int32Array,
  heap: Uint32Array,
  key: Int32Array,
  count: number,
  s: number,
  d0: number,
): void {
  let i = count;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!farther(words, t, d0, s, key[p], heap[p])) break;
    heap[i] = heap[p];
    key[i] = key[p];
    i = p;
  }
  heap[i] = s;
  key[i] = d0;
}

/**
 * The `n` ids nearest to target words `t` among the `size` dense entries
 * (`first`, `slotAt`) of a table, written as slots to `out[at..at + n)`,
 * nearest first. `heap`/`key` are scratch of at least `n` entries: a max-heap
 * holding the farthest of the best so far at its root.
 */
export function nearest(
  words: Int32Array,
  first: Int32Array,
  slotAt: Uint32Array,
  size: number,
  t: Int32Array,
  n: number,
  heap: Uint32Array,
  key: Int32Array,
  out: Uint32Array,
  at: number,
): void {
  // First distance words are compared as signed int32 with the sign bit
  // flipped: that orders them as unsigned and keeps them small integers.
  const t0 = t[0] ^ 0x80000000;
  let e = 0;
  for (; e < n; e++) pushFarthest(words, t, heap, key, e, slotAt[e], first[e] ^ t0);
  // Most entries are rejected on their first word alone.
  let top = key[0];
  for (; e < size; e++) {
    const d0 = first[e] ^ t0;
    if (d0 > top) continue;
    const s = slotAt[e];
    if (!farther(words, t, top, heap[0], d0, s)) continue;
    heap[0] = s;
    key[0] = d0;
    siftDownFarthest(words, t, heap, key, n);
    top = key[0];
  }
  // Pop the farthest repeatedly, filling the output from the back.
  for (let count = n; count > 0;) {
    out[at + --count] = heap[0];
    heap[0] = heap[count];
    key[0] = key[count];
    siftDownFarthest(words, t, heap, key, count);
  }
}

/**
 * Builds the search index of the live ids (`live[s] !== 0`, words by slot in
 * `words`) with `bits` prefix bits: fills `prefix` (`2^bits + 1` entries) and
 * one record per live id in `ixWords`, `ixFirst`, `ixSlot`, sorted by id,
 * then slot. A counting sort on the top bits (scattering in slot order), then
 * an insertion sort, which for about one id per bucket is one comparison per
 * record and never moves a record past its bucket.
 */
export function buildIndex(
  words: Int32Array,
  live: Uint8Array,
  bits: number,
  prefix: Uint32Array,
  ixWords: Int32Array,
  ixFirst: Int32Array,
  ixSlot: Uint32Array,
): void {
  const buckets = 1 << bits, shift = 32 - bits, high = live.length;
  // Count ids per prefix, shifted by one so the prefix sum gives starts.
  prefix.fill(0, 0, buckets + 1);
  for (let s = 0; s < high; s++) if (live[s] !== 0) prefix[(words[s * ID_WORDS] >>> shift) + 1]++;
  for (let b = 1; b <= buckets; b++) prefix[b] += prefix[b - 1];
  let count = 0;
  for (let s = 0; s < high; s++) {
    if (live[s] === 0) continue;
    const o = s * ID_WORDS, w0 = words[o];
    const e = prefix[w0 >>> shift]++;
    for (let w = 0, r = e * ID_WORDS; w < ID_WORDS; w++) ixWords[r + w] = words[o + w];
    ixFirst[e] = w0 ^ 0x80000000;
    ixSlot[e] = s;
    count++;
  }
  // prefix[b] is now the end of bucket b: shift to starts.
  prefix.copyWithin(1, 0, buckets);
  prefix[0] = 0;
  // Stable, so equal ids stay in slot order.
  for (let i = 1; i < count; i++) {
    for (let j = i; j > 0 && recordLess(ixWords, ixFirst, j, j - 1); j--) {
      swapRecords(ixWords, ixFirst, ixSlot, j, j - 1);
    }
  }
}

/** Whether the id of index record `a` is less than that of record `b`. */
function recordLess(ixWords: Int32Array, ixFirst: Int32Array, a: number, b: number): boolean {
  const fa = ixFirst[a], fb = ixFirst[b];
  if (fa !== fb) return fa < fb;
  for (let w = 1, ao = a * ID_WORDS, bo = b * ID_WORDS; w < ID_WORDS; w++) {
    const x = ixWords[ao + w], y = ixWords[bo + w];
    if (x !== y) return (x >>> 0) < (y >>> 0);
  }
  return false;
}

function swapRecords(
  ixWords: Int32Array,
  ixFirst: Int32Array,
  ixSlot: Uint32Array,
  a: number,
  b: number,
): void {
  for (let w = 0, ao = a * ID_WORDS, bo = b * ID_WORDS; w < ID_WORDS; w++) {
    const x = ixWords[ao + w];
    ixWords[ao + w] = ixWords[bo + w];
    ixWords[bo + w] = x;
  }
  const f = ixFirst[a];
  ixFirst[a] = ixFirst[b];
  ixFirst[b] = f;
  const s = ixSlot[a];
  ixSlot[a] = ixSlot[b];
  ixSlot[b] = s;
}

/**
 * Like {@link nearest}, through the index built by {@link buildIndex}. The
 * heap holds record numbers: records of equal ids sit in slot order, so they
 * break ties as slots do; `out` gets their slots.
 */
export function nearestIndexed(
  prefix: Uint32Array,
  bits: number,
  ixWords: Int32Array,
  ixFirst: Int32Array,
  ixSlot: Uint32Array,
  t: Int32Array,
  n: number,
  heap: Uint32Array,
  key: Int32Array,
  out: Uint32Array,
  at: number,
): void {
  // The deepest prefix of the target (at most `bits` bits, `bits - sh` of
  // them) whose range holds at least n records.
  const top = t[0] >>> (32 - bits);
  let lo = 0, hi = 0, sh = 0;
  for (;;) {
    const p = (top >>> sh) << sh;
    lo = prefix[p];
    hi = prefix[p + (1 << sh)];
    if (hi - lo >= n || sh === bits) break;
    sh++;
  }
  // Clustered ids: keep splitting on deeper bits (binary search) while the
  // range is large. Its records share the bits above `bit` and are sorted.
  if (sh === 0) {
    const limit = 2 * n + 32;
    for (let bit = bits; hi - lo > limit && bit < 256; bit++) {
      const w = bit >>> 5, b = 31 - (bit & 31);
      let a = lo, z = hi;
      while (a < z) {
        const mid = (a + z) >>> 1;
        if (((ixWords[mid * ID_WORDS + w] >>> b) & 1) === 0) a = mid + 1;
        else z = mid;
      }
      const one = ((t[w] >>> b) & 1) !== 0;
      const nlo = one ? a : lo, nhi = one ? hi : a;
      if (nhi - nlo < n) break;
      lo = nlo;
      hi = nhi;
    }
  }
  // The records' first words are stored sign-flipped: XOR with the plain
  // target word gives the sign-flipped distance word, as in `nearest`.
  const t0 = t[0];
  let e = lo;
  for (const end = lo + n; e < end; e++) pushFarthest(ixWords, t, heap, key, e - lo, e, ixFirst[e] ^ t0);
  let top0 = key[0];
  for (; e < hi; e++) {
    const d0 = ixFirst[e] ^ t0;
    if (d0 > top0) continue;
    if (!farther(ixWords, t, top0, heap[0], d0, e)) continue;
    heap[0] = e;
    key[0] = d0;
    siftDownFarthest(ixWords, t, heap, key, n);
    top0 = key[0];
  }
  for (let count = n; count > 0;) {
    out[at + --count] = ixSlot[heap[0]];
    heap[0] = heap[count];
    key[0] = key[count];
    siftDownFarthest(ixWords, t, heap, key, count);
  }
}
