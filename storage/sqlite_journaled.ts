/**
 * Commits journaled ahead of SQLite. A commit is appended to the journal
 * (storage/journal.ts, `journal-<n>.log`) as one frame and resolves once the
 * frame is written; its records are kept in memory (storage/memtable.ts)
 * until they are folded into SQLite: in the background once enough have
 * gathered ({@link FOLD_RECORDS} records or {@link FOLD_BYTES}), and on
 * demand (close, `list`, `changes`, a direct commit). On open, journal files
 * left by a crash are replayed first ({@link Journaled.recover}).
 *
 * Appending a frame and a memtable put is the whole durable put path: one
 * write (and with durability `power` one `fdatasync`), no SQLite statement.
 * Folding many commits at once into SQLite, many rows per statement, costs
 * less than a transaction per commit.
 *
 * A full disk (storage/sqlite_full.ts) fails the append that meets it and
 * nothing else; folds wait until the disk has room for them, meanwhile the
 * records stay in their journal files and in memory, where reads find them.
 *
 * @module
 */
import { type DiskFullError, isDiskFull } from "./disk_full.ts";
import { type FreeBytes, type HostFs, loadFreeBytes } from "./_host.ts";
import {
  encodeFrame,
  FrameWriter,
  JournalFile,
  journalFiles,
  journalFrames,
  type JournalFs,
  syncDir,
} from "./journal.ts";
import { addRecord, freeze, type FrozenMemtable, Memtable } from "./memtable.ts";
import type { NodeCache } from "./node_cache.ts";
import type { NodeTable } from "./sqlite_nodes.ts";
import {
  backOff,
  FOLD_CHUNK,
  foldNeed,
  type FullDisk,
  fullDisk,
  heldError,
  roomForPart,
} from "./sqlite_full.ts";
import { type FieldRecord, type StoredRecord, storedRecord } from "../core/store.ts";
import type { World } from "../core/world.ts";

/**
 * The active memtable is frozen and folded into SQLite in the background once
 * it holds this many records or bytes. It bounds the replay work after a
 * crash and the memory of journaled records.
 */
export const FOLD_RECORDS = 16_384;
const FOLD_BYTES = 16 << 20;
/** While a fold runs, the active memtable may grow to this before commits wait for the fold. */
const HOLD_RECORDS = 4 * FOLD_RECORDS;
const HOLD_BYTES = 4 * FOLD_BYTES;
/** A frame buffer grown past this is dropped after its commit, not kept for the next. */
const SHRINK_WRITER_BYTES = 4 << 20;

/** The file calls the journal and its replay use. */
export type JournaledFs = JournalFs & Pick<HostFs, "renameSync" | "readSync">;

/**
 * Records replayed into SQLite at a time after a crash: a replay holds about
 * this many decoded records (a few MB), whatever the journal holds.
 */
const REPLAY_RECORDS = 16_384;

/** What is journaled and not yet in SQLite, and its folding. */
export class Journaled {
  /** Commits journaled since the last fold began, in memory for reads. */
  active!: Memtable;
  /** Commits being folded into SQLite in the background, with how far the fold has come. */
  frozen: FrozenMemtable | undefined;
  /** Why the background fold stopped; commits fold synchronously (and fail with it) from then on. */
  foldError: unknown;
  /**
   * Set while the disk is too full to fold (see {@link foldWhenRoom}):
   * journaled records stay in memory and in their journal files, and a fold
   * is tried again only from `retryAt` on, and when the disk has room.
   */
  full: FullDisk | undefined;
  /** Set when the store closes: a queued background fold then does nothing. */
  closed = false;
  #writer = new FrameWriter();
  #foldQueued = false;
  /** Free space on the directory's disk, loaded when a fold first starts or the disk first fills. */
  #freeBytes: FreeBytes | undefined;
  readonly #nodes: NodeTable;
  readonly #fs: JournaledFs;
  readonly #dir: string;
  readonly #sep: string;
  /** Whether every append is synced (durability `power`). */
  readonly #power: boolean;
  readonly #world: World;

  constructor(nodes: NodeTable, fs: JournaledFs, dir: string, sep: string, power: boolean, world: World) {
    this.#nodes = nodes;
    this.#fs = fs;
    this.#dir = dir;
    this.#sep = sep;
    this.#power = power;
    this.#world = world;
  }

  /** Records journaled but not yet folded into SQLite. */
  get pending(): number {
    return this.active.count + (this.frozen?.left ?? 0);
  }

  /**
   * Replays the journal files a crash left (oldest first) into SQLite in one
   * transaction, {@link REPLAY_RECORDS} records at a time (so a replay holds
   * one part's records in memory, not all the files'), deletes them, and
   * starts a new journal file. Returns the seq of the last commit.
   */
  recover(): number {
    const fs = this.#fs, dir = this.#dir, sep = this.#sep;
    const files = journalFiles(fs, dir);
    const paths = files.map((f) => dir + sep + f.name);
    const gen = files.length > 0 ? files[files.length - 1].gen + 1 : 1;
    let last = 0;
    if (paths.length > 0) {
      try {
        this.#nodes.transaction(() => {
          let nodes = new Map<string, Map<string, StoredRecord>>(), held = 0;
          const flush = (): void => {
            const part = [...nodes];
            nodes = new Map();
            held = 0;
            // A node in two parts is merged again by the second: the later seq wins, as in one part.
            this.#nodes.write(part, 0, part.length);
          };
          for (const path of paths) {
            for (const frame of journalFrames(fs.readFileSync(path), path)) {
              for (const r of frame.records) addRecord(nodes, r); // later frames have higher seqs
              for (const [k, v] of frame.meta) this.#nodes.s.setMeta.run(k, v);
              held += frame.records.length;
              if (frame.records.length > 0) last = frame.records[frame.records.length - 1].seq;
              if (held >= REPLAY_RECORDS) flush();
            }
          }
          if (nodes.size > 0) flush();
        });
      } catch (e) {
        if (!isDiskFull(e)) throw e;
        // No room to replay: the records stay in their files and in memory, as if just journaled,
        // and are folded once the disk has room. Reads see them; writes journal after them.
        const mem = this.active = new Memtable(
          JournalFile.createWhenPossible(fs, dir, sep, gen, this.#power, paths),
        );
        for (const path of paths) {
          for (const frame of journalFrames(fs.readFileSync(path), path)) {
            for (const r of frame.records) mem.put(r);
            for (const [k, v] of frame.meta) mem.meta.set(k, v);
            mem.bytes += 64 * frame.meta.length;
            if (frame.records.length > 0) last = frame.records[frame.records.length - 1].seq;
          }
        }
        this.diskFull();
        return Math.max(this.#nodes.seq(), last); // journaled records are newer than SQLite's
      }
    }
    for (const path of paths) fs.unlinkSync(path);
    if (paths.length > 0 && this.#power) syncDir(fs, dir);
    this.active = this.#newMemtable(gen);
    return this.#nodes.seq();
  }

  /**
   * An empty memtable over a new journal file of generation `gen` (created
   * by its first write when the disk is full now).
   */
  #newMemtable(gen: number): Memtable {
    return new Memtable(JournalFile.createWhenPossible(this.#fs, this.#dir, this.#sep, gen, this.#power));
  }

  /**
   * Appends a commit (checked) of `records`, seqs from `first` on, and
   * `meta` to the journal, then holds it in the active memtable; drops the
   * nodes it changes from `cache`. Throws (with nothing stored) when the
   * append fails, or when memory holds all it may of what waits for a full
   * disk to have room.
   */
  append(
    first: number,
    records: readonly FieldRecord[],
    meta: readonly [string, string][],
    cache: NodeCache | undefined,
  ): void {
    if (
      this.full !== undefined && (this.active.count >= HOLD_RECORDS || this.active.bytes >= HOLD_BYTES) &&
      !this.foldWhenRoom()
    ) throw this.heldError(); // memory holds all it may of what waits for room
    const active = this.active;
    const length = encodeFrame(this.#writer, first, records, meta);
    try {
      active.journal.write(this.#writer.buf, length);
    } catch (e) {
      if (isDiskFull(e)) this.diskFull(false); // no fold either until the disk has room for it
      throw e;
    }
    // Committed from here on: nothing below may fail the commit.
    if (length > SHRINK_WRITER_BYTES) this.#writer = new FrameWriter(); // do not hold a huge buffer
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      active.put(storedRecord(r, first + i));
      cache?.delete(r.soul); // it holds what readNode returned, which this changes
    }
    for (let i = 0; i < meta.length; i++) active.meta.set(meta[i][0], meta[i][1]);
    active.bytes += 64 * meta.length;
    if (active.count >= FOLD_RECORDS || active.bytes >= FOLD_BYTES) {
      if (this.full !== undefined) this.foldWhenRoom();
      else {
        try {
          this.#rotate();
        } catch (e) {
          if (isDiskFull(e)) this.diskFull();
          else this.foldError = e; // the next commit folds synchronously, and fails with it if it persists
        }
      }
    }
  }

  /**
   * Starts folding the active memtable in the background under a new
   * journal file. If the previous fold is still running, it lets the active
   * one grow, up to {@link HOLD_RECORDS}, and past that finishes the previous
   * fold first, synchronously (backpressure).
   */
  #rotate(): void {
    if (this.frozen !== undefined) {
      if (this.active.count < HOLD_RECORDS && this.active.bytes < HOLD_BYTES) return;
      this.#foldFrozen(Infinity);
    }
    const mem = this.active;
    this.active = this.#newMemtable(mem.journal.gen + 1);
    this.frozen = freeze(mem);
    this.#loadFreeBytes(); // a fold is under way: see #foldStep
    this.#queueFold();
  }

  #queueFold(): void {
    if (this.#foldQueued) return;
    this.#foldQueued = true;
    this.#world.setTimer(() => this.#foldStep(), 0);
  }

  /** A step of the background fold: the next part of the frozen memtable, then the next step. */
  #foldStep(): void {
    this.#foldQueued = false;
    if (this.closed || this.frozen === undefined || this.full !== undefined) return;
    if (!roomForPart(this.frozen, this.#freeBytes?.(this.#dir))) { // no room: the records wait in the journal
      this.diskFull(false);
      return;
    }
    try {
      this.#foldFrozen(FOLD_CHUNK);
    } catch (e) {
      if (isDiskFull(e)) this.diskFull(); // folded once there is room (see foldWhenRoom)
      else this.foldError = e;
      return;
    }
    if (this.frozen !== undefined) this.#queueFold();
    else if (this.active.count >= FOLD_RECORDS || this.active.bytes >= FOLD_BYTES) this.#rotate();
  }

  /**
   * Writes the next nodes of the frozen memtable into SQLite, about `max`
   * records' worth, in one transaction; with the last of them its metadata
   * too, after which its journal file is deleted.
   */
  #foldFrozen(max: number): void {
    const f = this.frozen;
    if (f === undefined) return;
    let end = f.next, records = 0;
    while (end < f.nodes.length && records < max) records += f.nodes[end++][1].size;
    const last = end === f.nodes.length;
    const nodes = this.#nodes;
    nodes.transaction(() => {
      nodes.write(f.nodes, f.next, end);
      if (last) { for (const [k, v] of f.mem.meta) nodes.s.setMeta.run(k, v); }
    });
    f.next = end;
    f.left -= records;
    if (!last) return;
    this.frozen = undefined;
    f.mem.journal.remove();
  }

  /** Folds everything journaled into SQLite now and starts a new journal file. */
  foldAll(): void {
    this.#foldFrozen(Infinity);
    const mem = this.active;
    if (mem.empty) return;
    const all = [...mem.nodes];
    const nodes = this.#nodes;
    nodes.transaction(() => {
      nodes.write(all, 0, all.length);
      for (const [k, v] of mem.meta) nodes.s.setMeta.run(k, v);
    });
    this.active = this.#newMemtable(mem.journal.gen + 1);
    mem.journal.remove();
    this.foldError = undefined;
  }

  /**
   * {@link foldAll} on a disk that was full: a part ({@link FOLD_CHUNK}
   * records) per transaction, the WAL checkpointed and truncated before the
   * first and after each, so that the fold takes the records' size in the
   * database file and one part's in the WAL, and a part that fails gives
   * back all the WAL took (committed frames left in it would need room in the
   * database file first). Journal files go as their memtable is folded.
   */
  #foldInParts(): void {
    this.#nodes.checkpoint();
    for (;;) {
      while (this.frozen !== undefined) {
        this.#foldFrozen(FOLD_CHUNK);
        this.#nodes.checkpoint();
      }
      const mem = this.active;
      if (mem.empty) break;
      this.active = this.#newMemtable(mem.journal.gen + 1);
      this.frozen = freeze(mem);
    }
    this.foldError = undefined;
  }

  /**
   * Folds everything journaled into SQLite and says whether it did. After a
   * fold failed for want of space, it tries again only once the back-off
   * has passed and the disk has room for it (`foldNeed`): a fold that
   * could not finish would take the space the journal needs for new writes
   * (the journaled records are safe where they are meanwhile).
   */
  foldWhenRoom(): boolean {
    const full = this.full;
    if (this.frozen === undefined && this.active.empty) { // nothing to fold
      this.full = undefined; // (an append that fails again says so again)
      return true;
    }
    if (full !== undefined) {
      if (this.#world.now() < full.retryAt || this.#freeBytes === undefined) return false;
      const free = this.#freeBytes(this.#dir);
      if (free !== undefined && free < foldNeed(this.active, this.frozen)) return false;
    }
    try {
      if (full === undefined) this.foldAll();
      else this.#foldInParts();
    } catch (e) {
      if (!isDiskFull(e)) throw e;
      this.diskFull();
      return false;
    }
    this.full = undefined;
    return true;
  }

  /**
   * Notes that the disk is full: folds wait for room (see {@link
   * foldWhenRoom}), and after a failed fold (`failedFold`) for a while too,
   * longer after each.
   */
  diskFull(failedFold = true): void {
    const full = this.full ??= fullDisk();
    if (failedFold) backOff(full, this.#world.now());
    this.#loadFreeBytes();
  }

  #loadFreeBytes(): void {
    if (this.#freeBytes === undefined) void loadFreeBytes().then((f) => this.#freeBytes = f);
  }

  /** The error of a write that needs what is journaled folded first, and cannot (see {@link foldWhenRoom}). */
  /**
   * At close: everything journaled goes into SQLite when the disk has room
   * (the next open replays nothing) and the journal file is removed; else
   * what is left stays safe in its files, replayed on the next open.
   */
  closeJournal(): void {
    try {
      if (!this.foldWhenRoom()) throw this.heldError();
      this.active.journal.remove();
    } catch {
      this.active.journal.close();
      this.frozen?.mem.journal.close();
    }
  }

  heldError(): DiskFullError {
    return heldError(this.#dir, foldNeed(this.active, this.frozen), this.#freeBytes?.(this.#dir));
  }
}
