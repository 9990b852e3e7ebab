/**
 * The sync index: the item ids (item_id.ts) of a replica's current winning
 * records, kept sorted, so that range-based set reconciliation
 * (reconcile.ts) can fingerprint any id range in O(1) (index_snapshot.ts).
 *
 * Memory: about 50 bytes per item plus the key's UTF-8 bytes, all in typed
 * arrays (no object or string per item): a slot per (soul, field) holds its
 * id (16 bytes) and its key's offset in a byte arena (4 + key bytes); an
 * open-addressing table maps a key to its slot (~7 bytes); a snapshot adds
 * the sorted order (4 bytes) and a prefix sum per 64 items. The index this
 * replaced kept a string key, a Map entry and copies of the ids per item:
 * ~330 bytes per record (847 MB RSS for 2.3M records).
 *
 * Updates: `Database.onCommit` writes each record's id into its key's slot
 * (records are never removed, only replaced, so a slot's key never changes).
 * {@link SyncIndex.snapshot} sorts only the slots changed since the last one
 * and merges them in; the immutable view it returns reads the columns as
 * they were: the id column is kept in chunks of 65,536 slots, and a slot a
 * snapshot can see is changed in a copy of its chunk (1 MiB; copying the
 * whole column would cost 37 MB and ~15 ms on the commit path at 2.3M).
 *
 * Saved index: {@link SyncIndex.save} writes the columns to the store
 * (saved_index.ts); a later {@link SyncIndex.build} loads them and reads only
 * the records changed since. The network saves it when it stops, and while
 * it runs once enough records changed ({@link SyncIndex.saveEvery}), so that
 * a start after a crash reads only what came since the last save; a build
 * that had to read many records saves it at once. The store accepts a saved
 * index only if the commits before it survived (see `Store.readAux`).
 *
 * @example
 * ```ts
 * import { open } from "../../mod.ts";
 * import { SyncIndex } from "./sync_index.ts";
 * const db = await open({ storage: "memory" });
 * await db.put("a", { x: 1 });
 * const index = await SyncIndex.build(db);
 * console.log(index.size); // 1
 * index.close();
 * await db.close();
 * ```
 *
 * @module
 */
import type { Database } from "../database.ts";
import type { Kernels } from "../kernels/types.ts";
import type { FieldRecord } from "../store.ts";
import { systemWorld, type Timer, type World } from "../world.ts";
import {
  CHUNK_MASK,
  CHUNK_SHIFT,
  CHUNK_SLOTS,
  hashBytes,
  identity,
  keyBytesAt,
  putUtf8,
  renumberSlots,
  slotBefore,
  sortSlots,
  wordAt,
} from "./_columns.ts";
import { IndexSnapshot } from "./index_snapshot.ts";
import { ID_BYTES, itemIds } from "./item_id.ts";
import {
  AUX_NAME,
  type LoadedIndex,
  readSavedIndex,
  SAVE_AFTER_READS,
  SAVE_EVERY_RECORDS,
  SAVE_INTERVAL_MS,
  savedIndexParts,
  type SyncIndexBuildOptions,
  type SyncIndexBuildStats,
  type SyncIndexSavePolicy,
} from "./saved_index.ts";

/** A build reading every record gives the event loop a turn after this long (ms). */
const YIELD_MS = 20;
/** Longest soul or field in the key arena (u16 lengths; the data model allows 512 UTF-8 bytes). */
const MAX_KEY_PART = 0xffff;

/**
 * The live index of one database, as columns indexed by slot (one slot per
 * (soul, field), kept for good: records are never removed, only replaced):
 * the id (4 words), the key's offset in a byte arena; an open-addressing
 * table from key to slot; and the sorted order of the last snapshot.
 */
export class SyncIndex {
  readonly kernels: Kernels;
  /** Number of slots (= items). */
  #n = 0;
  /**
   * The ids by slot, in chunks of CHUNK_SLOTS slots: changing a slot a
   * snapshot can see copies its chunk (1 MiB), not the column (37 MB at
   * 2.3M items), and the column grows by adding chunks.
   */
  #chunks: Uint32Array[] = [];
  /** Per chunk: whether a snapshot holds it (then a slot it sees is changed in a copy). */
  #chunkShared: boolean[] = [];
  #keyOff: Uint32Array = new Uint32Array(1024);
  #arena: Uint8Array = new Uint8Array(16 * 1024);
  #arenaLen = 0;
  /** Slot + 1 per entry, 0 = empty; a power of two, at most 3/4 full. */
  #table: Int32Array = new Int32Array(2048);
  /** Slots in id order as of the last snapshot, which saw slots `[0, #sortedN)`. */
  #sorted: Uint32Array = new Uint32Array(0);
  #sortedN = 0;
  /** Slots below #sortedN whose id changed since the last snapshot (each once, flagged in #dirty). */
  #changed: number[] = [];
  #dirty: Uint8Array = new Uint8Array(1024);
  /** Whether slot = position in id order for every slot (see #renumber); any change ends it. */
  #inOrder = false;
  #snapshot: IndexSnapshot | undefined;
  #scratch = new Uint8Array(4 + 6 * 512);
  #db: Database | undefined;
  #unsubscribe: (() => void) | undefined;
  #stats: SyncIndexBuildStats = { loaded: false, recordsRead: 0 };
  /** Records indexed since the columns were last handed to the store (what a build after a crash rereads). */
  #sinceSave = 0;
  /** The save running or queued last (saves run one at a time, in order). */
  #saving: Promise<void> | undefined;
  /** The timer of {@link saveEvery}. */
  #saveTimer: Timer | undefined;
  readonly #world: World;
  /** Saves done (for tests and status). */
  #saves = 0;

  /** An empty index (use {@link SyncIndex.build} to follow a database). */
  constructor(kernels: Kernels, world: World = systemWorld) {
    this.kernels = kernels;
    this.#world = world;
  }

  /**
   * The index of `db`'s current records, kept current through `db.onCommit`
   * until {@link SyncIndex.close}. When the store holds a saved index (see
   * {@link save}), it is loaded and only the records changed since are read;
   * else every record is read (a page at a time, yielding to the event loop
   * between pages) and hashed, and the result is saved in the background.
   */
  static async build(db: Database, options: SyncIndexBuildOptions = {}): Promise<SyncIndex> {
    const world = options.world ?? systemWorld;
    let index = new SyncIndex(db.kernels, world);
    const pageSize = options.pageSize ?? 10_000;
    let pending: (readonly FieldRecord[])[] | undefined = [];
    // Subscribe first so nothing committed during the scan is missed; commits seen
    // meanwhile are applied after the scan, in commit order, so the newest wins.
    const listener = (records: readonly FieldRecord[]): void => {
      if (pending) pending.push(records);
      else index.update(records);
    };
    const unsubscribe = db.onCommit(listener);
    try {
      let after = 0, loaded = false, read = 0, lastYield = world.monotonic();
      const saved = await db.readAux(AUX_NAME).catch(() => undefined);
      const from = saved === undefined ? undefined : readSavedIndex(saved);
      if (from !== undefined) {
        index = SyncIndex.#loaded(db.kernels, world, from);
        after = from.seq;
        loaded = true;
      }
      for (let cursor: number | undefined;;) {
        const page = await db.changes(after, { limit: pageSize, cursor });
        read += page.records.length;
        index.update(page.records);
        if ((cursor = page.cursor) === undefined) break;
        if (world.monotonic() - lastYield > YIELD_MS) {
          await new Promise((resolve) => world.setTimer(() => resolve(undefined), 0)); // let other work run
          lastYield = world.monotonic();
        }
      }
      for (const records of pending) index.update(records);
      if (!loaded) index.#renumber(); // nothing has seen the columns yet
      index.#stats = { loaded, recordsRead: read };
    } catch (e) {
      unsubscribe();
      throw e;
    } finally {
      pending = undefined;
    }
    index.#db = db;
    index.#unsubscribe = unsubscribe;
    if (!index.#stats.loaded || index.#stats.recordsRead >= Math.max(SAVE_AFTER_READS, index.#n >>> 4)) {
      index.save().catch(() => {}); // the next build loads it; a failed save only means a full build
    }
    return index;
  }

  /** How the last {@link build} went. */
  get buildStats(): SyncIndexBuildStats {
    return this.#stats;
  }

  /** Number of items. */
  get size(): number {
    return this.#n;
  }

  /** Inserts records, each replacing whatever version of its (soul, field) the index held. */
  update(records: readonly FieldRecord[]): void {
    if (records.length === 0) return;
    this.#sinceSave += records.length;
    const ids = itemIds(this.kernels, records);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      const len = this.#encodeKey(r.soul, r.field);
      const mask = this.#table.length - 1;
      let pos = hashBytes(this.#scratch, 0, len) & mask, slot = -1;
      for (let e; (e = this.#table[pos]) !== 0; pos = (pos + 1) & mask) {
        if (this.#keyIs(e - 1, len)) {
          slot = e - 1;
          break;
        }
      }
      if (slot < 0) {
        slot = this.#append(len);
        this.#table[pos] = slot + 1;
        if (4 * this.#n > 3 * this.#table.length) this.#rehash(2 * this.#table.length);
      } else if (this.#sameId(slot, ids, ID_BYTES * i)) continue;
      else if (slot < this.#sortedN) {
        const c = slot >>> CHUNK_SHIFT;
        if (this.#chunkShared[c]) {
          this.#chunks[c] = this.#chunks[c].slice();
          this.#chunkShared[c] = false;
        }
        if (this.#dirty[slot] === 0) {
          this.#dirty[slot] = 1;
          this.#changed.push(slot);
        }
      }
      const w = this.#chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2, at = ID_BYTES * i;
      w[x] = wordAt(ids, at);
      w[x + 1] = wordAt(ids, at + 4);
      w[x + 2] = wordAt(ids, at + 8);
      w[x + 3] = wordAt(ids, at + 12);
      this.#snapshot = undefined;
      this.#inOrder = false;
    }
  }

  /** Writes the key `(soul, field)` into the scratch buffer as the arena holds it; returns its length. */
  #encodeKey(soul: string, field: string): number {
    const need = 4 + 3 * (soul.length + field.length);
    if (need > this.#scratch.length) this.#scratch = new Uint8Array(need);
    const b = this.#scratch;
    const s = putUtf8(soul, b, 4);
    const f = putUtf8(field, b, 4 + s);
    if (s > MAX_KEY_PART || f > MAX_KEY_PART) {
      throw new RangeError(`Cannot index a record: its soul or field exceeds ${MAX_KEY_PART} bytes`);
    }
    b[0] = s >>> 8, b[1] = s & 0xff, b[2] = f >>> 8, b[3] = f & 0xff;
    return 4 + s + f;
  }

  /** Whether slot `slot` holds the key in the scratch buffer. */
  #keyIs(slot: number, len: number): boolean {
    const a = this.#arena, off = this.#keyOff[slot], b = this.#scratch;
    if (keyBytesAt(a, off) !== len) return false;
    for (let i = 0; i < len; i++) if (a[off + i] !== b[i]) return false;
    return true;
  }

  #sameId(slot: number, ids: Uint8Array, at: number): boolean {
    const w = this.#chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2;
    return w[x] === wordAt(ids, at) && w[x + 1] === wordAt(ids, at + 4) &&
      w[x + 2] === wordAt(ids, at + 8) && w[x + 3] === wordAt(ids, at + 12);
  }

  /** A new slot for the key in the scratch buffer (its id is written by the caller). */
  #append(len: number): number {
    const slot = this.#n++;
    if (
      slot >= this.#keyOff.length || slot >= this.#chunks.length << CHUNK_SHIFT ||
      this.#arenaLen + len > this.#arena.length
    ) this.#grow(slot + 1, len);
    this.#arena.set(this.#scratch.subarray(0, len), this.#arenaLen);
    this.#keyOff[slot] = this.#arenaLen;
    this.#arenaLen += len;
    return slot;
  }

  /**
   * Makes room for `slots` slots and `len` more arena bytes. Columns grow by
   * an eighth (amortized O(1), and little slack: at 2.3M items doubling
   * would hold 60 MB for nothing; columns loaded from a saved index start
   * full).
   */
  #grow(slots: number, len: number): void {
    const slack = (n: number) => n + Math.max(1024, n >>> 3);
    while (this.#chunks.length << CHUNK_SHIFT < slots) {
      this.#chunks.push(new Uint32Array(4 * CHUNK_SLOTS));
      this.#chunkShared.push(false);
    }
    if (slots > this.#keyOff.length) {
      const cap = slack(slots), n = this.#n - 1;
      const keyOff = new Uint32Array(cap);
      keyOff.set(this.#keyOff.subarray(0, n));
      this.#keyOff = keyOff;
      const dirty = new Uint8Array(cap);
      dirty.set(this.#dirty.subarray(0, Math.min(n, this.#dirty.length)));
      this.#dirty = dirty;
    }
    if (this.#arenaLen + len > this.#arena.length) {
      const arena = new Uint8Array(Math.max(16 * 1024, slack(this.#arenaLen + len)));
      arena.set(this.#arena.subarray(0, this.#arenaLen));
      this.#arena = arena;
    }
  }

  /** Rebuilds the key table with `size` entries (a power of two). */
  #rehash(size: number): void {
    const table = new Int32Array(size), mask = size - 1, a = this.#arena, off = this.#keyOff;
    for (let slot = 0; slot < this.#n; slot++) {
      let pos = hashBytes(a, off[slot], keyBytesAt(a, off[slot])) & mask;
      while (table[pos] !== 0) pos = (pos + 1) & mask;
      table[pos] = slot + 1;
    }
    this.#table = table;
  }

  /** The current sorted view; rebuilt (in O(n + k log k) for k changes) only after changes. */
  snapshot(): IndexSnapshot {
    if (this.#snapshot) return this.#snapshot;
    this.#sort();
    this.#chunkShared.fill(true);
    this.#snapshot = new IndexSnapshot(
      this.#n,
      this.#sorted,
      this.#chunks.slice(),
      this.#keyOff,
      this.#arena,
    );
    return this.#snapshot;
  }

  /** Brings #sorted up to date: the changed and new slots sorted, merged with the others. */
  #sort(): void {
    if (this.#changed.length === 0 && this.#sortedN === this.#n) return;
    const w = this.#chunks, n = this.#n, old = this.#sorted, oldN = this.#sortedN;
    const changed = this.#changed;
    const added = new Uint32Array(changed.length + n - oldN);
    for (let i = 0; i < changed.length; i++) added[i] = changed[i];
    for (let s = oldN, i = changed.length; s < n; s++, i++) added[i] = s;
    sortSlots(added, w);
    // Merge the kept (sorted) slots with the sorted new and changed ones.
    const merged = new Uint32Array(n), dirty = this.#dirty;
    let i = 0, j = 0, k = 0;
    while (j < added.length) {
      while (i < oldN && dirty[old[i]] === 1) i++;
      if (i < oldN && slotBefore(w, old[i], added[j], true)) merged[k++] = old[i++];
      else merged[k++] = added[j++];
    }
    if (changed.length === 0) merged.set(old.subarray(i, oldN), k);
    else for (; i < oldN; i++) if (dirty[old[i]] === 0) merged[k++] = old[i];
    for (const s of changed) dirty[s] = 0;
    this.#changed = [];
    this.#sorted = merged;
    this.#sortedN = n;
  }

  /**
   * Renumbers the slots in id order (slot = position in the snapshot), in
   * place, so that a snapshot's pass over the ids in order reads memory in
   * sequence: at 2.3M items, summing them through a random slot order costs
   * ~450 ms in cache misses, in sequence ~20 ms. Done after a full build,
   * before anything has seen the columns (a loaded index is in order
   * already); changes since then go to the end or in place and only slowly
   * spoil the order. A save writes the slots in id order without moving the
   * live columns.
   */
  #renumber(): void {
    this.#sort();
    const n = this.#n, chunks = this.#chunks;
    // #dirty is all 0 after #sort: the renumbering marks done positions in it, and clears it.
    renumberSlots(n, this.#sorted, chunks, this.#keyOff, this.#table, this.#dirty);
    this.#chunkShared = chunks.map(() => true);
    this.#sorted = identity(n);
    this.#inOrder = true;
    this.#snapshot = new IndexSnapshot(n, this.#sorted, chunks.slice(), this.#keyOff, this.#arena);
  }

  /** Records indexed since the last save began (a build after a crash would read about this many). */
  get unsaved(): number {
    return this.#sinceSave;
  }

  /** Saves done since this index was built (including the one a build may start). */
  get saves(): number {
    return this.#saves;
  }

  /**
   * Saves the index in the store (`writeAux`), for the next {@link build} to
   * load. The saved index holds every commit up to the store's seq when the
   * call began: everything committed up to then is applied first (the
   * database goes idle), and the next build reads what was committed since.
   * Saves run one at a time: a call while one runs waits for it and then
   * saves again. Does nothing for a store that keeps no auxiliary data.
   */
  save(): Promise<void> {
    const next = (this.#saving ?? Promise.resolve()).then(() => this.#save(), () => this.#save());
    this.#saving = next;
    const done = () => {
      if (this.#saving === next) this.#saving = undefined;
    };
    next.then(done, done);
    return next;
  }

  /**
   * Saves the index from time to time while it follows the database, so that
   * a build after a crash (which finds the last save) reads a bounded number
   * of records: every `intervalMs` it checks, and saves if at least `records`
   * were indexed since the last save and no save is running. A failed save
   * (a full disk: `DiskFullError`) goes to `onError` and is tried again at a
   * later check. Replaces an earlier policy; {@link close} ends it. Does
   * nothing for a store that keeps no auxiliary data.
   */
  saveEvery(policy: SyncIndexSavePolicy = {}): void {
    const interval = policy.intervalMs ?? SAVE_INTERVAL_MS;
    if (!(interval > 0) || (policy.records !== undefined && !(policy.records >= 1))) {
      throw new RangeError(
        "Cannot save the sync index periodically: intervalMs and records must be positive",
      );
    }
    this.#world.clearTimer(this.#saveTimer);
    this.#saveTimer = undefined;
    if (this.#db?.canSaveAux !== true) return; // nowhere to save (a memory store)
    // A timer re-armed at each check (a World has one-shot timers), unref'd: it keeps no process alive.
    const check = (): void => {
      this.#saveTimer = this.#world.setTimer(check, interval, true);
      const due = policy.records ?? Math.max(SAVE_EVERY_RECORDS, this.#n >>> 4);
      if (this.#saving !== undefined || this.#sinceSave < due || this.#unsubscribe === undefined) return;
      this.save().catch((e) => policy.onError?.(e));
    };
    this.#saveTimer = this.#world.setTimer(check, interval, true);
  }

  async #save(): Promise<void> {
    const db = this.#db;
    if (db === undefined || !db.canSaveAux) return;
    const seq = await db.lastSeq();
    await db.idle(); // every commit up to `seq` has reached onCommit, so the index holds it
    if (this.#unsubscribe === undefined) return; // closed meanwhile: it may have missed commits
    // What is saved is the index as of now, read across later turns: the sorted order is a
    // new array at each sort, the id chunks are copied before a slot below n changes (as
    // for a snapshot), key offsets and arena bytes below n are never changed, and the key
    // table (changed in place by inserts) is copied.
    this.#sort();
    this.#chunkShared.fill(true);
    const n = this.#n;
    const columns = {
      n,
      chunks: this.#chunks.slice(0, (n + CHUNK_MASK) >>> CHUNK_SHIFT),
      keyOff: this.#keyOff,
      table: this.#table.slice(),
      arena: this.#arena.subarray(0, this.#arenaLen),
      order: this.#sorted,
      inOrder: this.#inOrder,
    };
    const unsaved = this.#sinceSave;
    this.#sinceSave = 0;
    try {
      const parts = await savedIndexParts(columns, seq, this.#world);
      await db.writeAux(AUX_NAME, parts);
    } catch (e) {
      this.#sinceSave += unsaved; // still unsaved: the next check tries again
      throw e;
    }
    this.#saves++;
  }

  /** The index whose columns a saved index holds (slot = position in id order). */
  static #loaded(kernels: Kernels, world: World, saved: LoadedIndex): SyncIndex {
    const index = new SyncIndex(kernels, world);
    index.#chunks = saved.chunks;
    index.#chunkShared = saved.chunks.map(() => false);
    index.#keyOff = saved.keyOff;
    index.#table = saved.table;
    index.#arena = saved.arena;
    index.#n = index.#sortedN = saved.n;
    index.#arenaLen = saved.arenaLen;
    index.#sorted = identity(saved.n);
    index.#inOrder = true;
    index.#dirty = new Uint8Array(saved.keyOff.length);
    return index;
  }

  /** Stops following the database. The index stays readable. Idempotent. */
  close(): void {
    this.#world.clearTimer(this.#saveTimer);
    this.#saveTimer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}
