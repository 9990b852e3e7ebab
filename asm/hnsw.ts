// HNSW graph algorithms (Malkov & Yashunin): greedy descent through the
// upper layers, beam search on a layer, and the neighbour-selection
// heuristic, as hnswlib runs them. This is core/kernels/js/hnsw.ts line for
// line, on the record layout of core/kernels/_hnsw_layout.ts: the JS side
// writes vectors, ids, levels and block offsets, this side the norms and
// links. Candidates are u64 keys (distance, node) (hnsw_heap.ts), so every
// comparison is strict and both engines visit, keep and link the same nodes.
// Distances use the f32 kernels of vector.ts (SIMD where built with it),
// whose arithmetic the JS engine reproduces bit for bit; a quantized index
// (hnswQuant) uses the int8 distances of hnsw_int8.ts instead.

import { cosineOf, dot, sqDist } from "./vector";
import { heapPop, heapPush, keyDist, toKey } from "./hnsw_heap";
import { qdist, qsum } from "./hnsw_int8";

// The layout, set by hnswLayout after every growth (one instance per index).
let R: usize = 0; // records
let STRIDE: usize = 0;
let DIMPAD: u32 = 0;
let META: usize = 0; // offset of the norm in a record; live +4, level +8, upper offset +12, id +16, links +20
let METRIC: u32 = 0; // 0 dot, 1 cosine, 2 l2
let M: u32 = 0;
let M0: u32 = 0;
let EFC: u32 = 0;
let UPPER: usize = 0;
let BLOCK: usize = 0;
let Q: usize = 0;
let VISITED: usize = 0;
let CAP: u32 = 0;
let HEAPC: usize = 0;
let HEAPW: usize = 0;
let SEL: usize = 0;
let PICK: usize = 0;
let NBR: usize = 0; // neighbours being scored: node (u32) and distance (f32) pairs, behind the picks
let OUTN: usize = 0;
let OUTS: usize = 0;
let STAMP: u32 = 0;
let QUANT: bool = false; // records hold int8 codes (DIMPAD of them) and META is dimPad + 8

/** Sets the layout and parameters (see _hnsw_layout.ts) and clears the visit marks. */
export function hnswLayout(
  records: usize,
  stride: usize,
  dimPad: u32,
  metric: u32,
  m: u32,
  efConstruction: u32,
  upper: usize,
  query: usize,
  visited: usize,
  capacity: u32,
  heapC: usize,
  heapW: usize,
  sel: usize,
  pick: usize,
  outNodes: usize,
  outScores: usize,
): void {
  R = records;
  STRIDE = stride;
  DIMPAD = dimPad;
  META = <usize> dimPad << 2;
  METRIC = metric;
  M = m;
  M0 = 2 * m;
  EFC = efConstruction;
  UPPER = upper;
  BLOCK = <usize> (1 + m) << 2;
  Q = query;
  VISITED = visited;
  CAP = capacity;
  HEAPC = heapC;
  HEAPW = heapW;
  SEL = sel;
  PICK = pick;
  NBR = pick + (<usize> (M0 + 4) << 3);
  OUTN = outNodes;
  OUTS = outScores;
  memory.fill(visited, 0, <usize> capacity << 2);
  STAMP = 0;
  QUANT = false;
}

/** After hnswLayout, for an int8 index: records of `dimPad` codes whose words start at `meta`. */
export function hnswQuant(meta: usize): void {
  QUANT = true;
  META = meta;
}

function vec(node: u32): usize {
  return R + <usize> node * STRIDE;
}

function norm(node: u32): f32 {
  return load<f32>(vec(node) + META);
}

function isLive(node: u32): bool {
  return load<u32>(vec(node) + META, 4) != 0;
}

/** Address of `node`'s link list on `layer` (count, then links). */
function list(node: u32, layer: u32): usize {
  const meta = vec(node) + META;
  if (layer == 0) return meta + 20;
  return UPPER + <usize> load<u32>(meta, 12) + <usize> (layer - 1) * BLOCK;
}

/** Graph distance from `q` (squared norm `qq`) to `node`: -dot, -cosine or squared l2; NaN → +Inf, -0 → +0. */
function dist(q: usize, qq: f32, node: u32): f32 {
  const v = vec(node);
  if (QUANT) return qdist(q, v, DIMPAD, META, METRIC);
  let d: f32;
  if (METRIC == 2) d = sqDist(q, v, DIMPAD);
  else if (METRIC == 1) d = -cosineOf(dot(q, v, DIMPAD), qq, load<f32>(v + META));
  else d = -dot(q, v, DIMPAD);
  if (d != d) return Infinity;
  return d == 0 ? 0 : d;
}

/** The graph distance from a raw score (dot, or squared l2) of `node`, as dist() finishes it. */
function finish(raw: f32, qq: f32, node: u32): f32 {
  let d: f32;
  if (METRIC == 2) d = raw;
  else if (METRIC == 1) d = -cosineOf(raw, qq, norm(node));
  else d = -raw;
  if (d != d) return Infinity;
  return d == 0 ? 0 : d;
}

function lanes(acc: v128): f32 {
  return (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) +
    (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
}

/**
 * Distances from `q` to the `n` nodes listed at NBR, stored beside them. With SIMD, four rows share one
 * pass over the query, as four independent accumulator chains: each row's chain is the very sequence of
 * f32x4 operations dot() and sqDist() run, so every distance is bit for bit dist()'s.
 */
function scoreAll(q: usize, qq: f32, n: u32): void {
  let i: u32 = 0;
  if (ASC_FEATURE_SIMD && !QUANT) {
    const end = <usize> DIMPAD << 2;
    for (; i + 4 <= n; i += 4) {
      const p = NBR + (<usize> i << 3);
      const e0 = load<u32>(p), e1 = load<u32>(p, 8), e2 = load<u32>(p, 16), e3 = load<u32>(p, 24);
      const r0 = vec(e0), r1 = vec(e1), r2 = vec(e2), r3 = vec(e3);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      if (METRIC == 2) {
        for (let o: usize = 0; o < end; o += 16) {
          const x = v128.load(q + o);
          const d0 = f32x4.sub(x, v128.load(r0 + o)), d1 = f32x4.sub(x, v128.load(r1 + o));
          const d2 = f32x4.sub(x, v128.load(r2 + o)), d3 = f32x4.sub(x, v128.load(r3 + o));
          a0 = f32x4.add(a0, f32x4.mul(d0, d0));
          a1 = f32x4.add(a1, f32x4.mul(d1, d1));
          a2 = f32x4.add(a2, f32x4.mul(d2, d2));
          a3 = f32x4.add(a3, f32x4.mul(d3, d3));
        }
      } else {
        for (let o: usize = 0; o < end; o += 16) {
          const x = v128.load(q + o);
          a0 = f32x4.add(a0, f32x4.mul(x, v128.load(r0 + o)));
          a1 = f32x4.add(a1, f32x4.mul(x, v128.load(r1 + o)));
          a2 = f32x4.add(a2, f32x4.mul(x, v128.load(r2 + o)));
          a3 = f32x4.add(a3, f32x4.mul(x, v128.load(r3 + o)));
        }
      }
      store<f32>(p, finish(lanes(a0), qq, e0), 4);
      store<f32>(p, finish(lanes(a1), qq, e1), 12);
      store<f32>(p, finish(lanes(a2), qq, e2), 20);
      store<f32>(p, finish(lanes(a3), qq, e3), 28);
    }
  }
  for (; i < n; i++) {
    const p = NBR + (<usize> i << 3);
    store<f32>(p, dist(q, qq, load<u32>(p)), 4);
  }
}

function between(a: u32, b: u32): f32 {
  return dist(vec(a), norm(a), b);
}

/** Stores the squared norm of `node`'s vector. */
export function hnswCommit(node: u32): void {
  const v = vec(node);
  if (QUANT) store<u32>(v + META, qsum(v, DIMPAD));
  else store<f32>(v + META, dot(v, v, DIMPAD));
}

/** Greedy walk on `layer` from `ep` (at distance `epD`) to a local minimum. */
function greedy(q: usize, qq: f32, ep: u32, epD: f32, layer: u32): u32 {
  let cur = ep;
  let curK = toKey(epD, ep);
  let changed = true;
  while (changed) {
    changed = false;
    const at = list(cur, layer);
    const n = load<u32>(at);
    for (let i: u32 = 1; i <= n; i++) {
      const e = load<u32>(at + (<usize> i << 2));
      const k = toKey(dist(q, qq, e), e);
      if (k < curK) {
        cur = e;
        curK = k;
        changed = true;
      }
    }
  }
  return cur;
}

/** Beam search on `layer` from `ep`; leaves the `ef` best (live, when `liveOnly`) in HEAPW; returns their count. */
function searchLayer(q: usize, qq: f32, ep: u32, ef: u32, layer: u32, liveOnly: bool): u32 {
  if (++STAMP == 0xffffffff) {
    memory.fill(VISITED, 0, <usize> CAP << 2);
    STAMP = 1;
  }
  const stamp = STAMP;
  store<u32>(VISITED + (<usize> ep << 2), stamp);
  const epK = toKey(dist(q, qq, ep), ep);
  let nc = heapPush(HEAPC, 0, epK, false);
  let nw: u32 = 0;
  if (!liveOnly || isLive(ep)) nw = heapPush(HEAPW, 0, epK, true);
  while (nc > 0) {
    const c = load<u64>(HEAPC);
    if (nw >= ef && load<u64>(HEAPW) < c) break;
    nc = heapPop(HEAPC, nc, false);
    const at = list(<u32> c, layer);
    const n = load<u32>(at);
    // The unvisited neighbours, in list order, then their distances (four at a time where SIMD allows),
    // then the same decisions in the same order as one neighbour at a time.
    let fresh: u32 = 0;
    for (let i: u32 = 1; i <= n; i++) {
      const e = load<u32>(at + (<usize> i << 2));
      const mark = VISITED + (<usize> e << 2);
      if (load<u32>(mark) == stamp) continue;
      store<u32>(mark, stamp);
      store<u32>(NBR + (<usize> fresh << 3), e);
      fresh++;
    }
    scoreAll(q, qq, fresh);
    for (let i: u32 = 0; i < fresh; i++) {
      const e = load<u32>(NBR + (<usize> i << 3));
      const k = toKey(load<f32>(NBR + (<usize> i << 3), 4), e);
      if (nw < ef || k < load<u64>(HEAPW)) {
        nc = heapPush(HEAPC, nc, k, false);
        if (!liveOnly || isLive(e)) {
          nw = heapPush(HEAPW, nw, k, true);
          if (nw > ef) nw = heapPop(HEAPW, nw, true);
        }
      }
    }
  }
  return nw;
}

/** Empties the result heap of `n` keys into SEL, best first. */
function drainSorted(n: u32): void {
  for (let i = n; i > 0;) {
    i--;
    store<u64>(SEL + (<usize> i << 3), load<u64>(HEAPW));
    heapPop(HEAPW, i + 1, true);
  }
}

/**
 * The heuristic over the `n` sorted keys at `cands`: keeps a candidate unless
 * a kept node is closer to it than the base is, or as close when that kept
 * node is as far from the base as it is (copies of one vector must not keep
 * each other: they would fill the lists and link only among themselves); at
 * most `max` (fewer than `max` candidates are all kept). Writes the picks to
 * PICK; returns their count.
 */
function select(cands: usize, n: u32, max: u32): u32 {
  if (n < max) {
    memory.copy(PICK, cands, <usize> n << 3);
    return n;
  }
  let count: u32 = 0;
  for (let i: u32 = 0; i < n && count < max; i++) {
    const key = load<u64>(cands + (<usize> i << 3));
    const e = <u32> key, d = keyDist(key);
    let good = true;
    for (let j: u32 = 0; j < count; j++) {
      const pick = load<u64>(PICK + (<usize> j << 3));
      const b = between(e, <u32> pick);
      if (b < d || (b == d && keyDist(pick) == d)) {
        good = false;
        break;
      }
    }
    if (good) {
      store<u64>(PICK + (<usize> count << 3), key);
      count++;
    }
  }
  return count;
}

/** Adds the link `from → to` on `layer`; a full list is re-chosen by the heuristic among its links and `to`. */
function link(from: u32, to: u32, layer: u32): void {
  const at = list(from, layer);
  const cap = layer == 0 ? M0 : M;
  const n = load<u32>(at);
  if (n < cap) {
    store<u32>(at, n + 1);
    store<u32>(at + (<usize> (n + 1) << 2), to);
    return;
  }
  for (let i: u32 = 0; i <= n; i++) {
    const e = i < n ? load<u32>(at + (<usize> (i + 1) << 2)) : to;
    const k = toKey(between(from, e), e);
    let j = i;
    while (j > 0) {
      const prev = load<u64>(SEL + (<usize> (j - 1) << 3));
      if (prev < k) break;
      store<u64>(SEL + (<usize> j << 3), prev);
      j--;
    }
    store<u64>(SEL + (<usize> j << 3), k);
  }
  const picked = select(SEL, n + 1, cap);
  store<u32>(at, picked);
  for (let i: u32 = 0; i < picked; i++) {
    store<u32>(at + (<usize> (i + 1) << 2), <u32> load<u64>(PICK + (<usize> i << 3)));
  }
}

/** Links `node` (record written, norm committed, link counts 0) into the graph below `entry`. */
export function hnswInsert(node: u32, level: u32, entry: u32, maxLevel: u32): void {
  const q = vec(node);
  const qq = norm(node);
  let ep = entry;
  for (let l = maxLevel; l > level; l--) ep = greedy(q, qq, ep, dist(q, qq, ep), l);
  for (let l = <i32> min(level, maxLevel); l >= 0; l--) {
    const nw = searchLayer(q, qq, ep, EFC, l, false);
    drainSorted(nw);
    const picked = select(SEL, nw, M);
    const at = list(node, l);
    store<u32>(at, picked);
    for (let i: u32 = 0; i < picked; i++) {
      store<u32>(at + (<usize> (i + 1) << 2), <u32> load<u64>(PICK + (<usize> i << 3)));
    }
    // link() reuses SEL and PICK as scratch: take the next entry point first.
    ep = <u32> load<u64>(SEL);
    for (let i: u32 = 0; i < picked; i++) link(load<u32>(at + (<usize> (i + 1) << 2)), node, l);
  }
}

/**
 * Searches for the query at Q: descends to layer 0, beam search with `ef`
 * over live nodes, writes up to `k` nodes (OUTN) and scores (OUTS; similarity,
 * or l2 distance) best first; returns the count.
 */
export function hnswSearch(entry: u32, maxLevel: u32, k: u32, ef: u32): u32 {
  const q = Q;
  const qq: f32 = QUANT ? 0 : dot(q, q, DIMPAD);
  let ep = entry;
  for (let l = maxLevel; l > 0; l--) ep = greedy(q, qq, ep, dist(q, qq, ep), l);
  const nw = searchLayer(q, qq, ep, ef, 0, true);
  drainSorted(nw);
  const count = min(nw, k);
  for (let i: u32 = 0; i < count; i++) {
    const key = load<u64>(SEL + (<usize> i << 3));
    store<u32>(OUTN + (<usize> i << 2), <u32> key);
    const d = keyDist(key);
    store<f32>(OUTS + (<usize> i << 2), METRIC == 2 ? sqrt<f32>(d) : -d);
  }
  return count;
}
