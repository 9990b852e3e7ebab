/**
 * The column layout shared by the live sync index (sync_index.ts), its
 * snapshots (index_snapshot.ts) and its saved form (saved_index.ts): item
 * ids by slot as 4 big-endian u32 words, in chunks of 65,536 slots (so that
 * changing a slot a snapshot sees copies 1 MiB, not the whole column), and
 * keys in a byte arena. Private to core/sync.
 *
 * @module
 */
import type { FieldKey } from "../store.ts";

/** log2 of the slots per chunk of the id column: 65,536 slots, 1 MiB of words (see SyncIndex). */
export const CHUNK_SHIFT = 16;
export const CHUNK_SLOTS = 1 << CHUNK_SHIFT;
export const CHUNK_MASK = CHUNK_SLOTS - 1;

const utf8Decoder = new TextDecoder();

/** The big-endian u32 at `at` of `b`. */
export function wordAt(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** Whether the id of slot `a` sorts before that of slot `b` (`orEqual`: or equals it). */
export function slotBefore(chunks: readonly Uint32Array[], a: number, b: number, orEqual: boolean): boolean {
  const w = chunks[a >>> CHUNK_SHIFT], x = (a & CHUNK_MASK) << 2;
  const v = chunks[b >>> CHUNK_SHIFT], y = (b & CHUNK_MASK) << 2;
  return w[x] !== v[y]
    ? w[x] < v[y]
    : w[x + 1] !== v[y + 1]
    ? w[x + 1] < v[y + 1]
    : w[x + 2] !== v[y + 2]
    ? w[x + 2] < v[y + 2]
    : orEqual
    ? w[x + 3] <= v[y + 3]
    : w[x + 3] < v[y + 3];
}

/** The (soul, field) stored at `off` in a key arena: u16 soul bytes, u16 field bytes, soul, field. */
export function keyAt(arena: Uint8Array, off: number): FieldKey {
  const s = (arena[off] << 8) | arena[off + 1], f = (arena[off + 2] << 8) | arena[off + 3];
  const at = off + 4;
  return {
    soul: utf8Decoder.decode(arena.subarray(at, at + s)),
    field: utf8Decoder.decode(arena.subarray(at + s, at + s + f)),
  };
}

/** Bytes of the key stored at `off` in an arena, header included. */
export function keyBytesAt(arena: Uint8Array, off: number): number {
  return 4 + ((arena[off] << 8) | arena[off + 1]) + ((arena[off + 2] << 8) | arena[off + 3]);
}

/** `[0, 1, ..., n - 1]`. */
export function identity(n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/**
 * Sorts slots by their ids in place. Each slot is packed with the top bits of
 * its id's first word into one exact double (bits · 2^slotBits + slot) and
 * sorted natively; runs with equal top bits are then ordered by the full id.
 */
export function sortSlots(slots: Uint32Array, chunks: readonly Uint32Array[]): void {
  const n = slots.length;
  if (n < 2) return;
  let max = 0;
  for (let i = 0; i < n; i++) if (slots[i] > max) max = slots[i];
  const slotBits = Math.max(1, 32 - Math.clz32(max)), wordBits = Math.min(32, 53 - slotBits);
  const scale = 2 ** slotBits, drop = 32 - wordBits;
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = slots[i], first = chunks[s >>> CHUNK_SHIFT][(s & CHUNK_MASK) << 2];
    const top = drop === 0 ? first : first >>> drop;
    packed[i] = top * scale + slots[i];
  }
  packed.sort();
  for (let i = 0; i < n; i++) slots[i] = packed[i] % scale;
  for (let i = 1; i < n; i++) {
    // Insertion sort within runs of equal top bits (rare: about n² / 2^(wordBits + 1) pairs).
    for (let j = i; j > 0 && slotBefore(chunks, slots[j], slots[j - 1], false); j--) {
      const t = slots[j];
      slots[j] = slots[j - 1];
      slots[j - 1] = t;
    }
  }
}

/**
 * Moves the ids and key offsets of slots `[0, n)` so that slot = position in
 * `order` (the slots in id order), in place, and renames the slots in the key
 * `table` to match. `done` (at least `n` bytes, all 0) marks finished
 * positions and is all 0 again on return.
 */
export function renumberSlots(
  n: number,
  order: Uint32Array,
  chunks: readonly Uint32Array[],
  off: Uint32Array,
  table: Int32Array,
  done: Uint8Array,
): void {
  const pos = new Uint32Array(n);
  // Follow each cycle of the permutation.
  for (let i = 0; i < n; i++) {
    if (done[i] === 1) continue;
    const v = chunks[i >>> CHUNK_SHIFT], x = (i & CHUNK_MASK) << 2;
    const w0 = v[x], w1 = v[x + 1], w2 = v[x + 2], w3 = v[x + 3], o = off[i];
    for (let j = i;;) {
      const k = order[j], w = chunks[j >>> CHUNK_SHIFT], y = (j & CHUNK_MASK) << 2;
      done[j] = 1;
      pos[k] = j;
      if (k === i) {
        w[y] = w0, w[y + 1] = w1, w[y + 2] = w2, w[y + 3] = w3, off[j] = o;
        break;
      }
      const u = chunks[k >>> CHUNK_SHIFT], z = (k & CHUNK_MASK) << 2;
      w[y] = u[z], w[y + 1] = u[z + 1], w[y + 2] = u[z + 2], w[y + 3] = u[z + 3], off[j] = off[k];
      j = k;
    }
  }
  done.fill(0, 0, n);
  for (let j = 0; j < table.length; j++) if (table[j] !== 0) table[j] = pos[table[j] - 1] + 1;
}

const utf8 = new TextEncoder();

/** Writes `s` as UTF-8 into `b` at `at` (room for 3 bytes per unit); returns the bytes written. */
export function putUtf8(s: string, b: Uint8Array, at: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return utf8.encodeInto(s, b.subarray(at)).written; // not ASCII: the slow way
    b[at + i] = c;
  }
  return n;
}

/** FNV-1a over `b[at, at + n)`, finished with a multiply-xorshift so that low bits mix well. */
export function hashBytes(b: Uint8Array, at: number, n: number): number {
  let h = 0x811c9dc5;
  for (let i = at; i < at + n; i++) h = Math.imul(h ^ b[i], 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}
