// Keys and heaps of the HNSW engine (asm/hnsw.ts). A key is a u64 that
// orders as (distance, node): the distance's f32 bits mapped to an unsigned
// order in the high half, the node in the low half. Distances are never NaN
// and never -0 (hnsw.ts canonicalises them), so the key order is exactly
// the JS engine's (distance, then node) comparison, and keyDist inverts it.

/** The key of node `node` at distance `d` (not NaN, not -0). */
export function toKey(d: f32, node: u32): u64 {
  const bits = reinterpret<u32>(d);
  const k = bits >> 31 ? ~bits : bits | 0x80000000;
  return (<u64> k << 32) | <u64> node;
}

/** The distance of a key. */
export function keyDist(key: u64): f32 {
  const k = <u32> (key >> 32);
  return reinterpret<f32>(k & 0x80000000 ? k & 0x7fffffff : ~k);
}

function above(a: u64, b: u64, max: bool): bool {
  return max ? a > b : a < b;
}

/** Pushes `key` on the heap of `n` keys at `heap` (the least on top, or the greatest when `max`); returns n + 1. */
export function heapPush(heap: usize, n: u32, key: u64, max: bool): u32 {
  let i = n;
  while (i > 0) {
    const p = (i - 1) >> 1;
    const pk = load<u64>(heap + (<usize> p << 3));
    if (!above(key, pk, max)) break;
    store<u64>(heap + (<usize> i << 3), pk);
    i = p;
  }
  store<u64>(heap + (<usize> i << 3), key);
  return n + 1;
}

/** Removes the top of the heap of `n` keys; returns n - 1. */
export function heapPop(heap: usize, n: u32, max: bool): u32 {
  const count = n - 1;
  if (count == 0) return 0;
  const key = load<u64>(heap + (<usize> count << 3));
  let i: u32 = 0;
  for (;;) {
    let c: u32 = 2 * i + 1;
    if (c >= count) break;
    let ck = load<u64>(heap + (<usize> c << 3));
    if (c + 1 < count) {
      const rk = load<u64>(heap + (<usize> (c + 1) << 3));
      if (above(rk, ck, max)) {
        c++;
        ck = rk;
      }
    }
    if (!above(ck, key, max)) break;
    store<u64>(heap + (<usize> i << 3), ck);
    i = c;
  }
  store<u64>(heap + (<usize> i << 3), key);
  return count;
}
