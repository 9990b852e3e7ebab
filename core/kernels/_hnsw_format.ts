/**
 * The serialized HNSW index: a header of sixteen little-endian u32 words,
 * then the node records (`count × stride` bytes, the layout of
 * `_hnsw_layout.ts`) and the used part of the upper arena. Both
 * implementations serialize the same bytes for the same graph.
 *
 * Header words: magic `LHNW`, version, dim, metric code, m, efConstruction,
 * ef, exactBelow, seed, level generator state, node count, live count,
 * entry node (`0xffffffff` when empty), top level, upper arena bytes, and
 * the quantization: 0 (f32 records) in version 1, 1 (int8 records) in
 * version 2. An f32 index is still written as version 1, so its bytes are
 * those of every earlier save; a quantized one is version 2, which older
 * code refuses.
 *
 * Decoding treats the bytes as hostile: every count, link, level, block
 * offset and component is checked before an engine walks the graph, so a
 * corrupt file is a `RangeError`, never an out-of-bounds walk.
 *
 * @module
 */
import {
  type HnswParams,
  hnswParams,
  MAX_LEVEL,
  METRIC_CODE,
  METRICS,
  NONE,
  recordShape,
} from "./_hnsw_layout.ts";

/** The state stored besides the options, the records and the upper blocks. */
export interface HnswState {
  levelState: number;
  count: number;
  entry: number;
  maxLevel: number;
  upperUsed: number;
}

const MAGIC = 0x574e484c; // "LHNW"
/** Version of an f32 index, and of a quantized (int8) one. */
const VERSION = 1;
const VERSION_INT8 = 2;
const HEADER = 64;

/** The bytes of an index. */
export function encodeHnsw(
  params: HnswParams,
  state: HnswState,
  records: Uint8Array,
  upper: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(HEADER + records.length + upper.length);
  const view = new DataView(out.buffer);
  const quant = params.quantize === "int8";
  const words = [
    MAGIC,
    quant ? VERSION_INT8 : VERSION,
    params.dim,
    METRIC_CODE[params.metric],
    params.m,
    params.efConstruction,
    params.ef,
    params.exactBelow,
    params.seed,
    state.levelState,
    state.count,
    0, // live count, filled below
    state.entry,
    state.maxLevel,
    state.upperUsed,
    quant ? 1 : 0,
  ];
  const shape = recordShape(params.dim, params.m, quant);
  let live = 0;
  const rv = new DataView(records.buffer, records.byteOffset, records.byteLength);
  for (let node = 0; node < state.count; node++) {
    live += rv.getUint32(node * shape.stride + shape.meta + 4, true);
  }
  words[11] = live;
  words.forEach((w, i) => view.setUint32(4 * i, w, true));
  out.set(records, HEADER);
  out.set(upper, HEADER + records.length);
  return out;
}

/** What {@link decodeHnsw} found. */
export interface DecodedHnsw {
  readonly params: HnswParams;
  readonly state: HnswState;
  readonly records: Uint8Array;
  readonly upper: Uint8Array;
  /** Live id → node. */
  readonly ids: Map<number, number>;
}

function fail(why: string): never {
  throw new RangeError(`Cannot restore the HNSW index: ${why}`);
}

/** Decodes and checks the bytes of {@link encodeHnsw}. */
export function decodeHnsw(bytes: Uint8Array): DecodedHnsw {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("HNSW bytes must be a Uint8Array");
  if (bytes.length < HEADER) fail(`${bytes.length} bytes is shorter than the header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const w = (i: number) => view.getUint32(4 * i, true);
  if (w(0) !== MAGIC) fail("not an HNSW index (bad magic)");
  if (w(1) !== VERSION && w(1) !== VERSION_INT8) {
    fail(`version ${w(1)} is not supported (only ${VERSION} and ${VERSION_INT8})`);
  }
  if (w(15) !== w(1) - 1) fail(`quantization ${w(15)} does not belong to version ${w(1)}`);
  const quant = w(1) === VERSION_INT8;
  const metric = METRICS[w(3)] ?? fail(`unknown metric code ${w(3)}`);
  let params: HnswParams;
  try {
    params = hnswParams({
      dim: w(2),
      metric,
      m: w(4),
      efConstruction: w(5),
      ef: w(6),
      exactBelow: w(7),
      seed: w(8),
      quantize: quant ? "int8" : undefined,
    });
  } catch (e) {
    fail((e as Error).message);
  }
  const state: HnswState = {
    levelState: w(9),
    count: w(10),
    entry: w(12),
    maxLevel: w(13),
    upperUsed: w(14),
  };
  const live = w(11);
  const shape = recordShape(params.dim, params.m, quant);
  const recordBytes = state.count * shape.stride;
  if (bytes.length !== HEADER + recordBytes + state.upperUsed) {
    fail(`${bytes.length} bytes do not match ${state.count} nodes and ${state.upperUsed} bytes of links`);
  }
  if (state.upperUsed % shape.block !== 0) fail("the upper links are not whole blocks");
  // Copies: the caller's buffer may change after this returns.
  const records = bytes.slice(HEADER, HEADER + recordBytes);
  const upper = bytes.slice(HEADER + recordBytes);
  const rv = new DataView(records.buffer);
  const uv = new DataView(upper.buffer);
  const levels = new Uint8Array(state.count);
  const ids = new Map<number, number>();
  for (let node = 0; node < state.count; node++) {
    const rec = node * shape.stride, m = rec + shape.meta;
    if (quant) checkCodes(records, rv, rec, params.dim, shape.dimPad, node);
    else {
      for (let i = 0; i < shape.dimPad; i++) {
        const x = rv.getFloat32(rec + 4 * i, true);
        if (x - x !== 0) fail(`node ${node} has a non-finite component`);
        if (i >= params.dim && x !== 0) rv.setFloat32(rec + 4 * i, 0, true);
      }
    }
    const isLive = rv.getUint32(m + 4, true), level = rv.getUint32(m + 8, true);
    if (isLive > 1) fail(`node ${node} has live flag ${isLive}`);
    if (level > MAX_LEVEL) fail(`node ${node} has level ${level}`);
    if (
      level > 0 && (rv.getUint32(m + 12, true) % shape.block !== 0 ||
        rv.getUint32(m + 12, true) + level * shape.block > state.upperUsed)
    ) {
      fail(`node ${node} has links outside the upper arena`);
    }
    levels[node] = level;
    const id = rv.getUint32(m + 16, true);
    if (isLive) {
      if (ids.has(id)) fail(`id ${id} is live twice`);
      ids.set(id, node);
    }
  }
  if (ids.size !== live) fail(`${ids.size} live nodes where the header says ${live}`);
  if (
    state.count === 0
      ? state.entry !== NONE
      : state.entry >= state.count || levels[state.entry] !== state.maxLevel
  ) {
    fail("bad entry point");
  }
  /** Checks the list of `count` links at byte `at` of `v` (layer `layer`, at most `cap`). */
  const checkList = (v: DataView, at: number, cap: number, layer: number, node: number) => {
    const n = v.getUint32(at, true);
    if (n > cap) fail(`node ${node} has ${n} links on layer ${layer}, more than ${cap}`);
    for (let i = 0; i < n; i++) {
      const to = v.getUint32(at + 4 + 4 * i, true);
      if (to >= state.count || levels[to] < layer || to === node) {
        fail(`node ${node} links to node ${to} on layer ${layer}`);
      }
    }
  };
  for (let node = 0; node < state.count; node++) {
    const m = node * shape.stride + shape.meta;
    checkList(rv, m + 20, shape.m0, 0, node);
    const first = rv.getUint32(m + 12, true);
    for (let l = 1; l <= levels[node]; l++) checkList(uv, first + (l - 1) * shape.block, params.m, l, node);
  }
  return { params, state, records, upper, ids };
}

/** Checks the int8 record at `rec`: codes from -127 to 127 (padding zeroed), finite non-negative scale and residual. */
function checkCodes(
  records: Uint8Array,
  rv: DataView,
  rec: number,
  dim: number,
  dimPad: number,
  node: number,
) {
  for (let i = 0; i < dim; i++) if (records[rec + i] === 0x80) fail(`node ${node} has the code -128`);
  records.fill(0, rec + dim, rec + dimPad);
  for (const at of [dimPad, dimPad + 4]) {
    const x = rv.getFloat32(rec + at, true);
    if (!(x >= 0 && x < Infinity)) fail(`node ${node} has a bad scale or residual ${x}`);
  }
}
