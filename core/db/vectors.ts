/**
 * The vector indexes of a Database: their declarations (kept in the store's
 * metadata, restored on open), one resident HNSW index per declared field
 * (hnsw_nearest.ts, restored from its save or rebuilt from the store on
 * open), kept up to date by a commit listener, and the check of vectors in
 * local puts.
 *
 * Maintenance rides on the commit listener (watch.ts `onCommit`): every
 * committed record of an indexed field — a local write, a merged foreign op,
 * a deferred op come due — sets, replaces or drops that soul's vector in
 * place, so deletes and overwrites need no rebuild and a deleted vector is
 * never found. A record whose value is not a valid vector of the index
 * (a foreign op: those are stored whatever they hold, so that replicas
 * converge) drops the soul from the index. The listener is registered only
 * while an index exists: it turns off the commit-at-once path of the queue.
 *
 * An index is built (on open, and by `createIndex` for data already there)
 * by one scan of the store's records (`Store.changes`); souls that commits
 * touch during the scan are marked and the scan leaves them alone, so a
 * write racing the build is never undone by an older record. The scan fills
 * an exact index (staged_nearest.ts) and open or `createIndex` resolve then;
 * the graph is built afterwards in slices of at most {@link SLICE_MS} ms,
 * each a macrotask of the database's World, so that writes, reads and the
 * network go on, and searches are exact scans until it is complete. A graph
 * still being built is never saved: the next open rebuilds it.
 *
 * @module
 */
import type { Kernels } from "../kernels/types.ts";
import type { FieldRecord, Store } from "../store.ts";
import type { Timer, World } from "../world.ts";
import { decodeValue, isTombstone } from "../value_encoding.ts";
import { type Embedder, Embeddings, type EmbedTarget } from "./embedding.ts";
import type { Watchers } from "./watch.ts";
import { HnswNearest } from "./hnsw_nearest.ts";
import { auxName, readSaved, savedParts } from "./saved_vectors.ts";
import { StagedNearest } from "./staged_nearest.ts";
import {
  checkIndexOptions,
  INDEXES_META,
  type IndexInfo,
  type IndexOptions,
  type IndexSpec,
  parseSpecs,
  sameSpec,
} from "./vector_spec.ts";
import { vectorFromEncoded } from "./vector_value.ts";
import { preparePut } from "./vector_put.ts";

/** The index of one declared field. */
export interface FieldIndex {
  readonly spec: IndexSpec;
  readonly index: StagedNearest;
  /** Settles once the index holds every vector stored when it was declared or opened (exact until its graph is built). */
  ready: Promise<void>;
  /** While building: the souls commits have set since the scan began. */
  touched: Set<string> | undefined;
  /** Scratch for decoding one stored vector. */
  readonly scratch: Float32Array;
  /** The pause between two slices of the graph's build. */
  timer: Timer | undefined;
  /** Set when the database closes: the graph's build stops. */
  stopped: boolean;
  /** The store's seq its save in the store was made at, if it is known to be current then. */
  savedSeq: number | undefined;
  /** Vectors set or removed since the last save (or open). */
  changes: number;
  /** When (the World's monotonic clock) it was last saved, or opened. */
  savedAt: number;
  /** The background save under way. */
  saving: Promise<void> | undefined;
  /** Where background embeddings of its texts land. */
  readonly target: EmbedTarget;
}

/** Records read per page of the build scan. */
const SCAN_PAGE = 4096;
/**
 * Time after which a slice of the graph's build yields to other work. One
 * insert of 384 dimensions into a graph of 100k with efConstruction 200
 * takes ~0.75 ms, so a slice is about ten inserts there and hundreds for
 * small ones; the clock is read after every insert, so a slice ends within
 * one insert of this (with a check every four inserts, 100k × 384 had
 * slices of median 9.4 ms, max 16.9 ms).
 */
export const SLICE_MS = 8;
/**
 * A ready index is saved in the background (besides at close) once this
 * share of its vectors changed since its last save, and at least
 * {@link SAVE_MIN_CHANGES}, at most once per {@link SAVE_EVERY_MS}: after a
 * crash the next open then restores a recent graph instead of rebuilding.
 * (A restored save older than the store is never used: see saved_vectors.ts.
 * What the save costs the event loop — the copy of the graph's bytes and the
 * header — is about a tenth of a second for 100k × 384.)
 */
export const SAVE_SHARE = 0.25;
export const SAVE_MIN_CHANGES = 1024;
export const SAVE_EVERY_MS = 60_000;

/** The vector indexes of one database. */
export class Vectors {
  readonly #store: Store;
  readonly #kernels: Kernels;
  readonly #watchers: Watchers;
  readonly #world: World;
  readonly #idle: () => Promise<void>;
  readonly #embeddings: Embeddings | undefined;
  readonly #fields = new Map<string, FieldIndex>();
  #listening = false;
  /** The declaration in progress: `createIndex` calls take turns. */
  #declaring: Promise<unknown> = Promise.resolve();

  /**
   * `idle` resolves once every write queued before the call is committed and
   * announced; `embed`, the application's text → vector function, if any.
   */
  constructor(
    store: Store,
    kernels: Kernels,
    watchers: Watchers,
    world: World,
    idle: () => Promise<void>,
    embed?: Embedder,
  ) {
    this.#store = store;
    this.#kernels = kernels;
    this.#watchers = watchers;
    this.#world = world;
    this.#idle = idle;
    this.#embeddings = embed === undefined ? undefined : new Embeddings(embed);
  }

  /** The vector of a search's `text` for the index `spec` (`TypeError` without an embedder). */
  embedQuery(text: string, spec: IndexSpec): Promise<Float32Array> {
    if (this.#embeddings === undefined) {
      return Promise.reject(
        new TypeError("search: text needs the database's embed function (open({ embed }))"),
      );
    }
    return this.#embeddings.query(text, spec.field, spec.dim);
  }

  /**
   * Restores the declared indexes (on open, before any write): each from its
   * save when one matches the store's last seq (saved_vectors.ts), the
   * others filled by one scan of the store, exact until their graphs, built
   * in the background, are complete.
   */
  async open(): Promise<void> {
    const specs = parseSpecs(await this.#store.getMeta(INDEXES_META));
    if (specs.length === 0) return;
    const seq = await this.#store.lastSeq();
    const entries: FieldIndex[] = [];
    for (let i = 0; i < specs.length; i++) {
      const restored = await this.#restore(specs[i], i, seq);
      const entry = this.#add(specs[i], restored);
      if (restored === undefined) entries.push(entry);
      else entry.savedSeq = seq;
    }
    const build = this.#build(entries);
    for (const e of entries) e.ready = build;
    await build;
  }

  /** The index of `spec` from its save, if the store holds one made at `seq` that restores. */
  async #restore(spec: IndexSpec, position: number, seq: number): Promise<HnswNearest | undefined> {
    if (this.#store.readAux === undefined) return undefined;
    const parts = await this.#store.readAux(auxName(position)).catch(() => undefined);
    const saved = readSaved(parts, spec, seq);
    if (saved === undefined) return undefined;
    try {
      return new HnswNearest(this.#kernels, spec, saved);
    } catch {
      return undefined; // bytes that do not restore: rebuilt
    }
  }

  /**
   * Saves every built index whose save is not current in the store's
   * auxiliary data (the database closes, its writes committed and applied),
   * so that the next open restores instead of rebuilding. Does nothing for a
   * store that keeps no auxiliary data.
   */
  async save(): Promise<void> {
    const store = this.#store;
    if (store.writeAux === undefined || this.#fields.size === 0) return;
    for (const e of this.#fields.values()) await e.saving;
    const seq = await store.lastSeq();
    let position = 0;
    for (const e of this.#fields.values()) {
      const name = auxName(position++);
      if (e.index.state !== "ready" || e.savedSeq === seq) continue;
      await store.writeAux(name, savedParts(e.spec, seq, e.index.graph.saved()));
      e.savedSeq = seq;
    }
  }

  /**
   * Saves `entry` in the background, if the store keeps auxiliary data and
   * no save of it is under way. The seq is read first, then the writes
   * queued by then are awaited, so the graph saved holds every commit up to
   * that seq (and perhaps later ones: the next open then sees a store ahead
   * of the save and rebuilds, never the other way round).
   */
  #saveSoon(entry: FieldIndex): void {
    const store = this.#store;
    if (store.writeAux === undefined || entry.saving !== undefined) return;
    const write = store.writeAux.bind(store);
    entry.saving = (async () => {
      const seq = await store.lastSeq();
      await this.#idle();
      const position = [...this.#fields.values()].indexOf(entry);
      if (entry.stopped || position < 0 || entry.index.state !== "ready" || entry.savedSeq === seq) return;
      const changes = entry.changes;
      await write(auxName(position), savedParts(entry.spec, seq, entry.index.graph.saved()));
      entry.savedSeq = seq;
      entry.changes -= changes;
      entry.savedAt = this.#world.monotonic();
    })().catch(() => {
      // A failed save (a full disk, the store closing) only means a rebuild at the next open.
    }).finally(() => entry.saving = undefined);
  }

  /** Declares an index (see `Database.createIndex`); resolves once it holds the stored vectors (exact until its graph is built). */
  create(options: IndexOptions): Promise<IndexInfo> {
    const spec = checkIndexOptions(options);
    const run = this.#declaring.then(() => this.#create(spec));
    this.#declaring = run.catch(() => {});
    return run;
  }

  async #create(spec: IndexSpec): Promise<IndexInfo> {
    const known = this.#fields.get(spec.field);
    if (known !== undefined) {
      if (!sameSpec(known.spec, spec)) {
        throw new RangeError(
          `An index on field ${JSON.stringify(spec.field)} exists with other settings ` +
            `(${JSON.stringify(known.spec)}); a field has one index`,
        );
      }
      await known.ready;
      return info(known);
    }
    const specs = [...[...this.#fields.values()].map((e) => e.spec), spec];
    await this.#store.commit({ meta: { [INDEXES_META]: JSON.stringify(specs) } });
    const entry = this.#add(spec);
    entry.ready = this.#build([entry]);
    await entry.ready;
    return info(entry);
  }

  /** The declared indexes. */
  list(): IndexInfo[] {
    return [...this.#fields.values()].map((e) => {
      const waiting = this.#embeddings?.waiting(e.spec.field) ?? 0;
      return waiting > 0 ? { ...info(e), embedding: waiting } : info(e);
    });
  }

  /** The index of `field`, or `undefined`. */
  get(field: string): FieldIndex | undefined {
    return this.#fields.get(field);
  }

  /** The indexed fields. */
  fields(): string[] {
    return [...this.#fields.keys()];
  }

  /**
   * `data` (a put's object for `soul`) with the values of indexed fields
   * checked, vectors turned into their stored bytes, texts embedded first
   * (vector_put.ts `preparePut`). Throws `TypeError`/`RangeError` naming
   * soul and field.
   */
  prepare(
    soul: string,
    data: Record<string, unknown>,
  ): Record<string, unknown> | Promise<Record<string, unknown>> {
    return this.#fields.size === 0 ? data : preparePut(this.#fields, this.#embeddings, soul, data);
  }

  /** Stops the graphs' builds and releases the indexes' memory (the database closes). */
  dispose(): void {
    this.#embeddings?.clear();
    for (const e of this.#fields.values()) {
      e.stopped = true;
      this.#world.clearTimer(e.timer);
      e.index.dispose();
    }
    this.#fields.clear();
  }

  #add(spec: IndexSpec, restored?: HnswNearest): FieldIndex {
    const index = new StagedNearest(this.#kernels, spec, restored);
    const entry: FieldIndex = {
      spec,
      index,
      ready: Promise.resolve(),
      touched: restored === undefined ? new Set() : undefined,
      scratch: new Float32Array(spec.dim),
      timer: undefined,
      stopped: false,
      savedSeq: undefined,
      changes: 0,
      savedAt: this.#world.monotonic(),
      saving: undefined,
      target: {
        field: spec.field,
        dim: spec.dim,
        get stopped() {
          return entry.stopped;
        },
        set: (soul, v) => index.set(soul, v),
      },
    };
    this.#fields.set(spec.field, entry);
    if (!this.#listening) {
      this.#listening = true;
      this.#watchers.onCommit(this.#onCommit);
    }
    return entry;
  }

  #onCommit = (records: readonly FieldRecord[]): void => {
    const fields = this.#fields;
    let changed: FieldIndex | undefined;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      const entry = fields.get(r.field);
      if (entry === undefined) continue;
      entry.touched?.add(r.soul);
      this.#update(entry, r.soul, r.value);
      entry.changes++;
      if (changed === undefined) changed = entry;
      else if (changed !== entry) this.#maintain(entry);
    }
    if (changed !== undefined) this.#maintain(changed);
  };

  /** After changes to `entry`: a compaction when its graph holds many dead nodes, a save when many changed. */
  #maintain(entry: FieldIndex): void {
    const { index } = entry;
    if (entry.stopped || entry.touched !== undefined || index.state !== "ready") return;
    if (index.wantsCompaction()) {
      index.compact();
      this.#grow(entry);
    } else if (
      entry.changes >= Math.max(SAVE_MIN_CHANGES, SAVE_SHARE * index.size) &&
      this.#world.monotonic() - entry.savedAt >= SAVE_EVERY_MS
    ) {
      this.#saveSoon(entry);
    }
  }

  /**
   * Fills `entries` from one scan of the store's records; then they stop
   * marking touched souls, and their graphs are built in the background.
   */
  async #build(entries: readonly FieldIndex[]): Promise<void> {
    if (entries.length === 0) return;
    const byField = new Map(entries.map((e) => [e.spec.field, e]));
    try {
      let cursor: number | undefined;
      do {
        const page = await this.#store.changes(0, { limit: SCAN_PAGE, cursor });
        for (const r of page.records) {
          const entry = byField.get(r.field);
          if (entry !== undefined && !entry.touched!.has(r.soul)) this.#update(entry, r.soul, r.value);
        }
        cursor = page.cursor;
      } while (cursor !== undefined);
    } finally {
      for (const e of entries) {
        e.touched = undefined;
        e.index.filled();
        if (e.index.state === "building") this.#grow(e);
      }
    }
  }

  /**
   * Sets or drops the vector of `soul` in `entry` from a stored value's
   * encoding: a vector is set; a text, with an embedder, is set with the
   * vector its local put embedded, or else dropped until its background
   * embedding lands; anything else drops the soul.
   */
  #update(entry: FieldIndex, soul: string, encoded: Uint8Array): void {
    const embeddings = this.#embeddings;
    if (vectorFromEncoded(encoded, entry.spec.dim, entry.scratch)) {
      embeddings?.drop(soul, entry.spec.field);
      return entry.index.set(soul, entry.scratch);
    }
    if (embeddings !== undefined && !isTombstone(encoded)) {
      const value = decodeValue(encoded);
      if (typeof value === "string") {
        const v = embeddings.take(soul, entry.spec.field, value);
        if (v !== undefined) return entry.index.set(soul, v);
        entry.index.remove(soul);
        return embeddings.later(entry.target, soul, value);
      }
    }
    embeddings?.drop(soul, entry.spec.field);
    entry.index.remove(soul);
  }

  /** Builds the graph of `entry`, a slice per macrotask, until it is complete or the database closes. */
  #grow(entry: FieldIndex): void {
    const world = this.#world;
    const clock = (): number => world.monotonic();
    const slice = (): void => {
      entry.timer = undefined;
      if (entry.stopped) return;
      if (!entry.index.step(clock, SLICE_MS)) {
        entry.timer = world.setTimer(slice, 0, true);
      } else if (entry.savedSeq === undefined || entry.changes > 0) {
        this.#saveSoon(entry); // so that a crash does not cost the next open this build
      }
    };
    entry.timer = world.setTimer(slice, 0, true);
  }
}

function info(e: FieldIndex): IndexInfo {
  const { index } = e;
  const common = { ...e.spec, count: index.size, dead: index.dead };
  if (index.state === "ready") return { ...common, state: "ready" };
  return { ...common, state: "building", building: index.progress };
}
