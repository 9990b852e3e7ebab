/**
 * The saved sync index: the columns of a {@link SyncIndex} written to the
 * store (`Store.writeAux`, a file beside SQLite) with the store's seq, so
 * that a later build loads them (their bytes become the columns) and reads
 * only the records changed since that seq, instead of reading and hashing
 * every record (measured on 2.3M records: bench/open_big.bench.ts).
 *
 * Format (native byte order, checked by a byte-order mark): a header of
 * {@link SAVED_HEADER_WORDS} u32 words (magic, version, byte-order mark,
 * count, seq hi, seq lo, arena bytes, table entries), then the id column in
 * chunks, the key offsets, the key table and the key arena, the slots in id
 * order. A save gathers the slots in id order a chunk at a time, yielding
 * to the event loop, without moving the live columns. A load accepts only a
 * file this code wrote whose columns pass the checks that a wrong file could
 * break; anything else means a full build.
 *
 * @module
 */
import type { World } from "../world.ts";
import { CHUNK_MASK, CHUNK_SHIFT, CHUNK_SLOTS, keyBytesAt, slotBefore } from "./_columns.ts";

/** Name of the saved index among the store's auxiliary files ({@link Store.writeAux}). */
export const AUX_NAME = "sync-index";

/** A running index saves itself once this many records (or a sixteenth of the items) changed since its last save. */
export const SAVE_EVERY_RECORDS = 100_000;
/** …and looks at most this often (ms): periodic saves are at least this far apart. */
export const SAVE_INTERVAL_MS = 60_000;
/** When a running index saves itself ({@link SyncIndex.saveEvery}). */
export interface SyncIndexSavePolicy {
  /**
   * Save once at least this many records were indexed since the last save
   * (default: {@link SAVE_EVERY_RECORDS} or a sixteenth of the items, the larger).
   */
  readonly records?: number;
  /** Check this often, in ms (default {@link SAVE_INTERVAL_MS}): saves are at least this far apart. */
  readonly intervalMs?: number;
  /** Told of a save that failed (it is tried again at a later check); default: nothing. */
  readonly onError?: (error: unknown) => void;
}

/** First word of a saved index, and its format version. */
const SAVED_MAGIC = 0x4c534931; // "LSI1"
const SAVED_VERSION = 1;
/** Header words of a saved index: magic, version, byte-order mark, count, seq (hi, lo), arena bytes, table entries. */
const SAVED_HEADER_WORDS = 8;
const BYTE_ORDER_MARK = 0x01020304;
/** A save gathering slots out of order gives the event loop a turn after this long (ms). */
const YIELD_MS = 20;

/** The columns of an index as a save takes them (read across later turns: none may change meanwhile). */
export interface IndexColumns {
  /** Number of slots. */
  readonly n: number;
  /** The ids by slot, in chunks of CHUNK_SLOTS slots (at least those holding slots below `n`). */
  readonly chunks: readonly Uint32Array[];
  /** Key offsets in the arena by slot (at least `n`). */
  readonly keyOff: Uint32Array;
  /** The key table: slot + 1 per entry, 0 = empty (a copy: a save renumbers it). */
  readonly table: Int32Array;
  /** The key arena's used bytes. */
  readonly arena: Uint8Array;
  /** Slots in id order. */
  readonly order: Uint32Array;
  /** Whether slot = position in id order already (then `order` is the identity). */
  readonly inOrder: boolean;
}

/** A saved index as loaded: the columns in id order (slot = position), with room to grow. */
export interface LoadedIndex {
  readonly n: number;
  /** The store's seq the saved index holds every commit of. */
  readonly seq: number;
  /** Whole chunks of CHUNK_SLOTS slots. */
  readonly chunks: Uint32Array[];
  /** Key offsets; its length is the slot capacity (≥ n). */
  readonly keyOff: Uint32Array;
  readonly table: Int32Array;
  /** The arena; its length is its capacity (≥ arenaLen). */
  readonly arena: Uint8Array;
  readonly arenaLen: number;
}

/** Resolves at a later turn of the event loop, with `world`'s monotonic time then. */
function nextTurn(world: World): Promise<number> {
  return new Promise((resolve) => world.setTimer(() => resolve(world.monotonic()), 0));
}

/**
 * The parts of the saved form of `columns` at `seq` (what `Store.writeAux`
 * writes back to back). Columns out of id order are gathered in order here,
 * a chunk at a time, giving the event loop a turn every {@link YIELD_MS}.
 */
export async function savedIndexParts(
  columns: IndexColumns,
  seq: number,
  world: World,
): Promise<Uint8Array[]> {
  const { n, chunks, keyOff, table, arena, order } = columns;
  const bytes = (a: Uint32Array | Int32Array, words: number) =>
    new Uint8Array(a.buffer, a.byteOffset, 4 * words);
  const header = new Uint32Array(SAVED_HEADER_WORDS);
  header[0] = SAVED_MAGIC, header[1] = SAVED_VERSION, header[2] = BYTE_ORDER_MARK, header[3] = n;
  header[4] = Math.floor(seq / 2 ** 32), header[5] = seq >>> 0, header[6] = arena.length;
  header[7] = table.length;
  const parts = [bytes(header, SAVED_HEADER_WORDS)];
  const used = (n + CHUNK_MASK) >>> CHUNK_SHIFT;
  const words = (c: number) => 4 * Math.min(CHUNK_SLOTS, n - (c << CHUNK_SHIFT));
  if (columns.inOrder) {
    for (let c = 0; c < used; c++) parts.push(bytes(chunks[c], words(c)));
    parts.push(bytes(keyOff, n), bytes(table, table.length), arena);
    return parts;
  }
  // The file holds slots in id order (what a load returns): gathered here, a chunk at a time,
  // giving the event loop a turn every YIELD_MS (at 2.3M items, renumbering the live
  // columns instead blocked for 150-200 ms).
  const offs = new Uint32Array(n), pos = new Uint32Array(n);
  let last = world.monotonic();
  for (let c = 0, i = 0; c < used; c++) {
    const out = new Uint32Array(words(c));
    for (let y = 0; y < out.length; y += 4, i++) {
      const slot = order[i], w = chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2;
      out[y] = w[x], out[y + 1] = w[x + 1], out[y + 2] = w[x + 2], out[y + 3] = w[x + 3];
      offs[i] = keyOff[slot];
      pos[slot] = i;
    }
    parts.push(bytes(out, out.length));
    if (world.monotonic() - last > YIELD_MS) last = await nextTurn(world);
  }
  for (let j = 0; j < table.length; j++) {
    if (table[j] !== 0) table[j] = pos[table[j] - 1] + 1;
    if ((j & 0xffff) === 0xffff && world.monotonic() - last > YIELD_MS) last = await nextTurn(world);
  }
  parts.push(bytes(offs, n), bytes(table, table.length), arena);
  return parts;
}

/** A saved index (as {@link savedIndexParts} made it), or `undefined` when it is not one this code wrote. */
export function readSavedIndex(saved: Uint8Array[]): LoadedIndex | undefined {
  if (saved.length < 4 || saved[0].length !== 4 * SAVED_HEADER_WORDS) return undefined;
  // Each part is a column (a view of its bytes, or of a copy where they are not aligned).
  const u32 = (b: Uint8Array) => {
    const a = b.byteOffset % 4 === 0 ? b : b.slice();
    return new Uint32Array(a.buffer, a.byteOffset, a.length >>> 2);
  };
  const h = u32(saved[0]);
  if (h[0] !== SAVED_MAGIC || h[1] !== SAVED_VERSION || h[2] !== BYTE_ORDER_MARK) return undefined;
  const n = h[3], seq = h[4] * 2 ** 32 + h[5], arenaLen = h[6], size = h[7];
  const c = (n + CHUNK_MASK) >>> CHUNK_SHIFT, rest = saved.slice(1 + c);
  if (
    saved.length !== 4 + c || rest[0].length !== 4 * n || rest[1].length !== 4 * size ||
    rest[2].length !== arenaLen || size < 2048 || (size & (size - 1)) !== 0 || 4 * n > 3 * size
  ) {
    return undefined;
  }
  // The id column's chunks, each in the buffer of its part when that has room for a whole
  // chunk (see Store.readAux); the other columns take the room after their part.
  const chunks: Uint32Array[] = [];
  for (let i = 0; i < c; i++) {
    const part = saved[1 + i];
    if (part.length !== 16 * Math.min(CHUNK_SLOTS, n - (i << CHUNK_SHIFT))) return undefined;
    if (part.byteOffset === 0 && part.buffer.byteLength >= 16 * CHUNK_SLOTS) {
      chunks.push(new Uint32Array(part.buffer, 0, 4 * CHUNK_SLOTS));
    } else {
      const chunk = new Uint32Array(4 * CHUNK_SLOTS);
      chunk.set(u32(part));
      chunks.push(chunk);
    }
  }
  const room = (b: Uint8Array, unit: number) =>
    b.byteOffset === 0 ? Math.floor(b.buffer.byteLength / unit) : 0;
  const cap = Math.max(n, room(rest[0], 4));
  const keyOff = cap > n ? new Uint32Array(rest[0].buffer, 0, cap) : u32(rest[0]);
  const t = u32(rest[1]);
  const table = new Int32Array(t.buffer, t.byteOffset, size);
  const arena = room(rest[2], 1) > arenaLen ? new Uint8Array(rest[2].buffer) : rest[2];
  // Check what a wrong file could break (O(n), sequential): ids strictly ascending, keys
  // inside the arena, the table naming each slot once.
  for (let s = 0; s < n; s++) {
    if (s > 0 && !slotBefore(chunks, s - 1, s, false)) return undefined;
    const off = keyOff[s];
    if (off + 4 > arenaLen || off + keyBytesAt(arena, off) > arenaLen) return undefined;
  }
  const seen = new Uint8Array(n);
  let entries = 0;
  for (let j = 0; j < size; j++) {
    const e = table[j];
    if (e === 0) continue;
    if (e < 0 || e > n || seen[e - 1] === 1) return undefined;
    seen[e - 1] = 1;
    entries++;
  }
  if (entries !== n) return undefined;
  return { n, seq, chunks, keyOff, table, arena, arenaLen };
}

/** A build that read at least this many records (or a sixteenth of the items) saves the index at once. */
export const SAVE_AFTER_READS = 65_536;
/** Progress of `SyncIndex.build`, for tests and status. */
export interface SyncIndexBuildStats {
  /** Whether a saved index was loaded (else every record was read and hashed). */
  readonly loaded: boolean;
  /** Records read from the store while building (only those changed since the save, after a load). */
  readonly recordsRead: number;
}

/** Options of `SyncIndex.build`. */
export interface SyncIndexBuildOptions {
  /** Records read from the store at a time (default 10,000). */
  readonly pageSize?: number;
  /** Clocks and timers of the index's yields and periodic saves (default `systemWorld`). */
  readonly world?: World;
}
