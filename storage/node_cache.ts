/**
 * The node cache of the SQLite engine: nodes read more than once lately, as
 * `readNode` returns them, within a byte budget, so that repeated reads skip
 * SQLite and the journal. Kept apart from the store because it is a policy
 * of its own (a doorkeeper that admits a node on its second read, CLOCK
 * eviction, sizes counted as V8 lays records out), measured on its own.
 *
 * @module
 */
import type { StoredRecord } from "../core/store.ts";

/** Budget of the node cache when the options name none. */
export const DEFAULT_CACHE_BYTES = 8 << 20;
/**
 * Bytes a cached record costs beyond its field name and bytes, as measured
 * on V8 (64-bit): the record object (~100 B), its value's `Uint8Array`
 * (~100 B with its buffer), the field string's header, its array slot.
 */
const RECORD_OVERHEAD = 280;
/** Bytes a cached node costs beyond its records: map entry, entry object, records array. */
const NODE_OVERHEAD = 200;
/** Values up to this many bytes are copied into the cache on the JS heap (V8 allocates them there). */
const SMALL_VALUE = 64;

/**
 * Recently read nodes within a byte budget, evicted by CLOCK (second
 * chance): a hit only sets a flag, so reads never reorder the map. It is
 * exact, not a guess that may go stale: this process is the database's only
 * user (directory LOCK, `locking_mode=EXCLUSIVE`) and every commit drops the
 * souls it writes. It holds nodes as `readNode` returns them (SQLite's
 * records with the journaled ones laid over them), so a fold, which only
 * moves records from the journal into SQLite, leaves it alone.
 *
 * Records handed out are shared with the cache (as the memory engine shares
 * its own): callers treat them as read-only. Sizes are counted as they are
 * on V8 (a record costs ~300 B, not the ~120 B once assumed, so a 32 MiB
 * budget held 2–3× that), and small values are copied onto the JS heap so
 * that a cached node holds no buffer of its own outside it (one per field
 * left Deno's malloc fragmented). Nodes enter on their second read (see
 * {@link NodeCache.seen}).
 */
export class NodeCache {
  #map = new Map<string, CacheEntry>();
  #bytes = 0;
  #budget: number;
  /** The doorkeeper's bits (see {@link seen}): 2^16 bytes, whatever the budget. */
  #filter = new Uint8Array(1 << 16);
  #marked = 0;

  constructor(budget: number) {
    this.#budget = budget;
  }

  /** The node's records (shared: read-only), or `undefined` when not cached. */
  get(soul: string): StoredRecord[] | undefined {
    const entry = this.#map.get(soul);
    if (entry === undefined) return undefined;
    entry.used = true;
    return entry.records;
  }

  /**
   * Caches `records`, the node `soul` just read from SQLite, if it was read
   * recently already (see {@link seen}); returns whether it did.
   */
  admit(soul: string, records: StoredRecord[]): boolean {
    if (!this.seen(soul)) return false;
    this.set(soul, records);
    return true;
  }

  /**
   * The doorkeeper: whether `soul` was missed since the filter was last
   * cleared (marking it if not). A node enters the cache on its second miss,
   * so that a scan reading every node once (a `list` of the whole database,
   * a sync) caches nothing: it neither flushes the working set nor churns
   * the cache, whose evicted entries, long-lived by then, left the JS heap
   * and malloc grown (a 100,000-node scan: RSS 176 MB with a 1 MiB cache,
   * 104 MB without). Two bits per soul, cleared after 2^15 souls marked (an
   * eighth of the bits); a collision only admits a node early.
   */
  seen(soul: string): boolean {
    let h = 0x811c9dc5;
    for (let i = 0; i < soul.length; i++) h = Math.imul(h ^ soul.charCodeAt(i), 0x01000193);
    const bits = this.#filter, mask = bits.length * 8 - 1;
    // Two bits per soul (a Bloom filter): a stranger passes for seen far more rarely than with one.
    const b1 = h & mask, b2 = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 13 & mask;
    const m1 = 1 << (b1 & 7), m2 = 1 << (b2 & 7);
    if ((bits[b1 >>> 3] & m1) !== 0 && (bits[b2 >>> 3] & m2) !== 0) return true;
    bits[b1 >>> 3] |= m1;
    bits[b2 >>> 3] |= m2;
    if (++this.#marked >= bits.length / 2) {
      bits.fill(0);
      this.#marked = 0;
    }
    return false;
  }

  set(soul: string, records: StoredRecord[]): void {
    let bytes = NODE_OVERHEAD + soul.length * 2;
    for (const r of records) {
      bytes += RECORD_OVERHEAD + r.field.length * 2 + r.value.length + (r.sig?.length ?? 0);
    }
    if (bytes > this.#budget / 8) return; // one huge node must not flush everything else
    for (let i = 0; i < records.length; i++) {
      // The driver's value has a buffer of its own outside the JS heap; a small copy lives in the heap.
      const r = records[i];
      if (r.value.length <= SMALL_VALUE) records[i] = { ...r, value: r.value.slice() };
    }
    this.delete(soul);
    this.#map.set(soul, { records, size: bytes, used: false });
    this.#bytes += bytes;
    if (this.#bytes > this.#budget) this.#evict();
  }

  delete(soul: string): void {
    const entry = this.#map.get(soul);
    if (entry === undefined) return;
    this.#map.delete(soul);
    this.#bytes -= entry.size;
  }

  /** Frees a tenth of the budget, oldest first; entries read since their last pass get another round. */
  #evict(): void {
    const target = this.#budget * 0.9;
    for (const [soul, entry] of this.#map) {
      this.#map.delete(soul);
      if (entry.used) {
        entry.used = false;
        this.#map.set(soul, entry); // to the back: visited again only after all others
        continue;
      }
      this.#bytes -= entry.size;
      if (this.#bytes <= target) return;
    }
  }
}

interface CacheEntry {
  /** The node's records, in field order. */
  readonly records: StoredRecord[];
  /** What the entry is counted as, in bytes. */
  readonly size: number;
  used: boolean;
}
