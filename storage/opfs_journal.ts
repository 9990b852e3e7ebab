/**
 * The journal's files in OPFS, for the OPFS worker (storage/opfs_worker.ts,
 * storage/opfs_sqlite.ts): the synchronous file calls `Journaled`
 * (storage/sqlite_journaled.ts) and its journal (storage/journal.ts) make,
 * over sync access handles of files beside the database.
 *
 * A sync access handle is obtained asynchronously and holds its file
 * exclusively, while `Journaled` appends, truncates, reads and deletes its
 * `journal-<n>.log` files synchronously. So the journal lives in a pool of
 * slots: the files `journal/slot-<k>` in the database's OPFS directory
 * (`.lattice/<path>`), all opened at {@link OpfsJournalFs.open} and held
 * until {@link OpfsJournalFs.close}. A slot in use starts with a
 * {@link PREFIX_BYTES}-byte prefix naming the journal file it holds (`LTJS`,
 * format 1, the generation as f64), followed by that file's bytes; an empty
 * slot is free. Creating a journal file writes a free slot's prefix, deleting
 * one truncates its slot to nothing (and flushes that), so replay after a
 * crash finds the files by their prefixes. A slot whose prefix is not whole
 * (a crash while it was written, before any frame was) is free.
 *
 * At most two journal files live at once (the active one and the one being
 * folded), and a third is created before the second goes; open keeps
 * {@link SPARE_SLOTS} free slots beyond the files a crash left.
 *
 * `fdatasyncSync`/`fsyncSync` are the handle's `flush()`: what makes a frame
 * durable (the worker's `Journaled` syncs every append). A handle's `write()`
 * hands the bytes to the operating system (a `pwrite` in a normal profile;
 * in an incognito profile, OPFS is kept in the browser process's memory).
 * Quota errors become `ENOSPC` (storage/disk_full.ts: a full disk).
 *
 * @module
 */
import type { JournaledFs } from "./sqlite_journaled.ts";

/** The part of `FileSystemSyncAccessHandle` used here. */
export interface SyncHandle {
  read(buffer: Uint8Array, options: { at: number }): number;
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}

interface FileHandle {
  readonly kind: "file";
  readonly name: string;
  createSyncAccessHandle(): Promise<SyncHandle>;
}

/** The part of `FileSystemDirectoryHandle` used here. */
export interface DirHandle {
  readonly kind: "directory";
  getDirectoryHandle(name: string, options?: { create: boolean }): Promise<DirHandle>;
  getFileHandle(name: string, options?: { create: boolean }): Promise<FileHandle>;
  values(): AsyncIterable<FileHandle | DirHandle>;
}

/** The directory of the slots, and the `dir` Journaled is given. */
export const JOURNAL_DIR = "journal";
/** Bytes before a slot's journal file: magic, format, generation. */
export const PREFIX_BYTES = 16;
/** Free slots kept beyond those a crash left in use. */
export const SPARE_SLOTS = 3;

const MAGIC = 0x534a544c; // "LTJS" read as a little-endian u32
const FORMAT = 1;
const SLOT = /^slot-(\d{1,6})$/;
const FILE = /^journal-(\d{1,15})\.log$/;
/** The descriptor of the directory itself (`syncDir` opens it); slots are FD_BASE + index. */
const DIR_FD = 2;
const FD_BASE = 3;

interface Slot {
  readonly handle: SyncHandle;
  /** The journal generation it holds, 0 when free. */
  gen: number;
  /** Bytes in the slot, prefix included. */
  size: number;
  /** Read position of a descriptor opened with `r` (relative to the prefix). */
  pos: number;
}

function fsError(code: string, what: string): Error {
  return Object.assign(new Error(`${code}: ${what}`), { code });
}

/** A quota error as the `ENOSPC` the journal knows as a full disk; others as they are. */
function asNoSpace(e: unknown): unknown {
  return (e as { name?: string })?.name === "QuotaExceededError"
    ? Object.assign(new Error(`ENOSPC: the origin's storage quota is used up (${(e as Error).message})`), {
      code: "ENOSPC",
    })
    : e;
}

/** The journal's file calls over a pool of OPFS slots (see the module comment). */
export class OpfsJournalFs implements JournaledFs {
  readonly #slots: Slot[];
  #closed = false;

  private constructor(slots: Slot[]) {
    this.#slots = slots;
  }

  /**
   * Opens (creating) the slots in `dir`'s `journal` directory, each with its
   * sync access handle; rejects when one is held elsewhere (another worker
   * has this database open), with none of them left open.
   */
  static async open(dir: DirHandle): Promise<OpfsJournalFs> {
    const sub = await dir.getDirectoryHandle(JOURNAL_DIR, { create: true });
    const files: { index: number; file: FileHandle }[] = [];
    for await (const entry of sub.values()) {
      const m = entry.kind === "file" ? SLOT.exec(entry.name) : null;
      if (m) files.push({ index: Number(m[1]), file: entry as FileHandle });
    }
    files.sort((a, b) => a.index - b.index);
    const slots: Slot[] = [];
    try {
      let free = 0;
      for (const { file } of files) {
        const slot = readSlot(await file.createSyncAccessHandle());
        slots.push(slot);
        if (slot.gen === 0) free++;
      }
      for (let next = files.length > 0 ? files[files.length - 1].index + 1 : 0; free < SPARE_SLOTS; next++) {
        const file = await sub.getFileHandle(`slot-${next}`, { create: true });
        slots.push(readSlot(await file.createSyncAccessHandle()));
        free++;
      }
    } catch (e) {
      for (const s of slots) s.handle.close();
      throw e;
    }
    return new OpfsJournalFs(slots);
  }

  /** Journal files in use (for tests and the report): their names and sizes without the prefix. */
  files(): { name: string; bytes: number }[] {
    return this.#slots.filter((s) => s.gen > 0).map((s) => ({
      name: name(s.gen),
      bytes: s.size - PREFIX_BYTES,
    }));
  }

  /** Gives every handle back (idempotent); the journal cannot be used after. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#slots) s.handle.close();
  }

  openSync(path: string, flags: "ax" | "wx" | "r"): number {
    this.#open();
    if (flags === "r") {
      if (path === JOURNAL_DIR) return DIR_FD;
      const i = this.#find(path);
      this.#slots[i].pos = 0;
      return FD_BASE + i;
    }
    const gen = genOf(path);
    if (this.#slots.some((s) => s.gen === gen)) throw fsError("EEXIST", path);
    const i = this.#slots.findIndex((s) => s.gen === 0);
    if (i < 0) throw new Error(`No free OPFS journal slot for ${path}: all ${this.#slots.length} are in use`);
    const slot = this.#slots[i];
    writePrefix(slot, gen);
    return FD_BASE + i;
  }

  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number {
    const slot = this.#slot(fd);
    const bytes = offset === 0 && length === buffer.length
      ? buffer
      : buffer.subarray(offset, offset + length);
    let n: number;
    try {
      n = slot.handle.write(bytes, { at: slot.size });
    } catch (e) {
      throw asNoSpace(e);
    }
    slot.size += n;
    return n;
  }

  readSync(fd: number, buffer: Uint8Array, offset: number, length: number): number {
    const slot = this.#slot(fd);
    const left = Math.min(length, slot.size - PREFIX_BYTES - slot.pos);
    if (left <= 0) return 0;
    const n = slot.handle.read(buffer.subarray(offset, offset + left), { at: PREFIX_BYTES + slot.pos });
    slot.pos += n;
    return n;
  }

  ftruncateSync(fd: number, length: number): void {
    const slot = this.#slot(fd);
    slot.handle.truncate(PREFIX_BYTES + length);
    slot.size = PREFIX_BYTES + length;
  }

  fdatasyncSync(fd: number): void {
    if (fd !== DIR_FD) this.#slot(fd).handle.flush();
  }

  fsyncSync(fd: number): void {
    // The directory's entries need no sync: a slot's prefix is flushed with its first frame.
    if (fd !== DIR_FD) this.#slot(fd).handle.flush();
  }

  closeSync(fd: number): void {
    if (fd !== DIR_FD) this.#slot(fd); // checks it; the handle stays open for the slot's next file
  }

  readFileSync(path: string): Uint8Array {
    this.#open();
    const slot = this.#slots[this.#find(path)];
    const bytes = new Uint8Array(slot.size - PREFIX_BYTES);
    let at = 0;
    while (at < bytes.length) {
      const n = slot.handle.read(bytes.subarray(at), { at: PREFIX_BYTES + at });
      if (n <= 0) break;
      at += n;
    }
    return at === bytes.length ? bytes : bytes.subarray(0, at);
  }

  readdirSync(path: string): string[] {
    this.#open();
    if (path !== JOURNAL_DIR) throw fsError("ENOENT", path);
    const out: string[] = [];
    for (const s of this.#slots) if (s.gen > 0) out.push(name(s.gen));
    return out;
  }

  /** Frees the slot: truncated to nothing and flushed, so a replay never finds the file again. */
  unlinkSync(path: string): void {
    this.#open();
    const slot = this.#slots[this.#find(path)];
    slot.handle.truncate(0);
    slot.handle.flush();
    slot.gen = 0;
    slot.size = 0;
  }

  renameSync(from: string, to: string): void {
    this.#open();
    const gen = genOf(to);
    const i = this.#find(from);
    if (this.#slots.some((s, j) => j !== i && s.gen === gen)) this.unlinkSync(to); // replaced, as rename does
    const slot = this.#slots[i];
    const head = prefix(gen);
    slot.handle.write(head, { at: 0 });
    slot.gen = gen;
  }

  #find(path: string): number {
    const gen = genOf(path);
    const i = this.#slots.findIndex((s) => s.gen === gen);
    if (i < 0) throw fsError("ENOENT", path);
    return i;
  }

  #slot(fd: number): Slot {
    this.#open();
    const slot = this.#slots[fd - FD_BASE];
    if (slot === undefined || slot.gen === 0) throw fsError("EBADF", `bad file descriptor ${fd}`);
    return slot;
  }

  #open(): void {
    if (this.#closed) throw new Error("The OPFS journal is closed");
  }
}

function name(gen: number): string {
  return `journal-${gen}.log`;
}

/** The generation a journal path (`journal/journal-<n>.log`) names. */
function genOf(path: string): number {
  const m = path.startsWith(JOURNAL_DIR + "/") ? FILE.exec(path.slice(JOURNAL_DIR.length + 1)) : null;
  if (m === null || Number(m[1]) < 1) throw fsError("ENOENT", path);
  return Number(m[1]);
}

function prefix(gen: number): Uint8Array {
  const head = new Uint8Array(PREFIX_BYTES);
  const v = new DataView(head.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, FORMAT, true);
  v.setFloat64(8, gen, true);
  return head;
}

/** Starts journal file `gen` in a free slot (flushed with the file's first append). */
function writePrefix(slot: Slot, gen: number): void {
  slot.handle.truncate(0);
  let n: number;
  try {
    n = slot.handle.write(prefix(gen), { at: 0 });
  } catch (e) {
    slot.handle.truncate(0);
    throw asNoSpace(e);
  }
  if (n !== PREFIX_BYTES) {
    slot.handle.truncate(0);
    throw fsError("ENOSPC", "the journal slot's prefix could not be written whole");
  }
  slot.gen = gen;
  slot.size = PREFIX_BYTES;
}

/** A slot as found: in use when its prefix is whole, else free (and emptied). */
function readSlot(handle: SyncHandle): Slot {
  const size = handle.getSize();
  if (size >= PREFIX_BYTES) {
    const head = new Uint8Array(PREFIX_BYTES);
    const v = new DataView(head.buffer);
    const gen = handle.read(head, { at: 0 }) === PREFIX_BYTES && v.getUint32(0, true) === MAGIC &&
        v.getUint32(4, true) === FORMAT
      ? v.getFloat64(8, true)
      : 0;
    if (Number.isSafeInteger(gen) && gen > 0) return { handle, gen, size, pos: 0 };
  }
  if (size > 0) handle.truncate(0);
  return { handle, gen: 0, size: 0, pos: 0 };
}
