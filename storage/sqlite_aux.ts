/**
 * Auxiliary data of the SQLite engine (`Store.readAux`/`writeAux`; the sync
 * index saves its columns so): the file `<name>.aux` beside the database: a
 * random tag (8 bytes), the number of parts and their lengths (u32 each),
 * then the parts. It counts only if the metadata `aux.<name>` holds its tag
 * and length: the file is synced and renamed into place before they are
 * committed, as an ordinary commit, so if they survived a crash, so did
 * every commit before them. Large files are better kept out of SQLite's
 * pages and WAL, which a 100 MB index would churn on every save.
 *
 * @module
 */
import { syncDir } from "./journal.ts";
import type { JournaledFs } from "./sqlite_journaled.ts";
import { sleep, type World } from "../core/world.ts";

/** File suffix, tag bytes at its start, metadata key prefix. */
const AUX_SUFFIX = ".aux";
const AUX_TAG_BYTES = 8;
const AUX_META = "aux.";
const AUX_MAX_PARTS = 1024;
/** Bytes of auxiliary data written and synced between turns of the event loop (see {@link AuxFiles.write}). */
const AUX_SLICE = 4 << 20;

/** What a write of auxiliary data needs of its store. */
export interface AuxStore {
  /** Throws when the store closed (checked between slices). */
  checkOpen(): void;
  /** Throws when no commit can be made now (before the file replaces the old one). */
  checkCommit(): void;
  /** Commits the metadata that vouches for the file. */
  commitMeta(key: string, value: string): void;
  getMeta(key: string): Promise<string | undefined>;
}

/** The auxiliary data files of one database directory. */
export class AuxFiles {
  readonly #fs: JournaledFs;
  readonly #dir: string;
  readonly #sep: string;
  readonly #world: World;
  /** Names of the auxiliary data being written. */
  #writing = new Set<string>();

  constructor(fs: JournaledFs, dir: string, sep: string, world: World) {
    this.#fs = fs;
    this.#dir = dir;
    this.#sep = sep;
    this.#world = world;
  }

  /**
   * The parts of `<name>.aux`, or `undefined` when there is none that the
   * metadata vouches for. Each part is read into a buffer of its own, an
   * eighth longer (reading the file whole at once held twice its size for a
   * moment on Deno, and one buffer would be kept whole for as long as any
   * part of it is in use; the room lets a loaded column grow without a copy).
   */
  async read(store: AuxStore, name: string): Promise<Uint8Array[] | undefined> {
    checkAuxName(name);
    const [tag, length] = (await store.getMeta(AUX_META + name) ?? "").split(":");
    const size = Number(length);
    if (tag === undefined || !Number.isSafeInteger(size) || size < AUX_TAG_BYTES + 4) return undefined;
    const fs = this.#fs;
    let fd: number;
    try {
      fd = fs.openSync(this.#dir + this.#sep + name + AUX_SUFFIX, "r");
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return undefined;
      throw e;
    }
    let total = 0;
    const read = (n: number): Uint8Array | undefined => {
      if (total + n > size) return undefined;
      // An eighth more, as room to grow: pages never written are not resident.
      const bytes = new Uint8Array(n + (n >>> 3)).subarray(0, n);
      let at = 0;
      for (let got; at < n && (got = fs.readSync(fd, bytes, at, Math.min(n - at, 8 << 20))) > 0;) at += got;
      total += at;
      return at === n ? bytes : undefined;
    };
    try {
      const head = read(AUX_TAG_BYTES + 4);
      if (head === undefined || hexOf(head.subarray(0, AUX_TAG_BYTES)) !== tag) return undefined;
      const count = new DataView(head.buffer).getUint32(AUX_TAG_BYTES, true);
      const lengths = count <= AUX_MAX_PARTS ? read(4 * count) : undefined;
      if (lengths === undefined) return undefined;
      const parts: Uint8Array[] = [];
      const view = new DataView(lengths.buffer);
      for (let i = 0; i < count; i++) {
        const part = read(view.getUint32(4 * i, true));
        if (part === undefined) return undefined;
        parts.push(part);
      }
      return total === size ? parts : undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Writes `<name>.aux` (a new file, synced, renamed over the old one), then
   * commits its tag and length. The file is written {@link AUX_SLICE} bytes
   * at a time, each slice synced, with a turn of the event loop between
   * slices: a 100 MB sync index written at once held the loop for 0.1-0.4 s
   * (one 4 MiB slice and its sync: ~10 ms). One write per name at a time.
   */
  async write(store: AuxStore, name: string, parts: readonly Uint8Array[]): Promise<void> {
    checkAuxName(name);
    if (parts.length > AUX_MAX_PARTS) {
      throw new RangeError(`Auxiliary data has more than ${AUX_MAX_PARTS} parts`);
    }
    if (this.#writing.has(name)) {
      throw new Error(`Auxiliary data ${name} is being written: one write at a time`);
    }
    this.#writing.add(name);
    try {
      const fs = this.#fs, file = this.#dir + this.#sep + name + AUX_SUFFIX, tmp = file + ".tmp";
      const tag = this.#world.randomBytes(new Uint8Array(AUX_TAG_BYTES));
      try {
        fs.unlinkSync(tmp); // left by a crash or a failed write
      } catch { /* none */ }
      const head = new Uint8Array(4 + 4 * parts.length), view = new DataView(head.buffer);
      view.setUint32(0, parts.length, true);
      parts.forEach((p, i) => view.setUint32(4 + 4 * i, p.length, true));
      const fd = fs.openSync(tmp, "wx", 0o600);
      let size = 0, unsynced = 0;
      try {
        for (const part of [tag, head, ...parts]) {
          for (let at = 0; at < part.length;) {
            const n = fs.writeSync(fd, part, at, Math.min(part.length - at, AUX_SLICE - unsynced));
            at += n;
            if ((unsynced += n) < AUX_SLICE) continue;
            fs.fsyncSync(fd);
            unsynced = 0;
            await sleep(this.#world, 0);
            store.checkOpen();
          }
          size += part.length;
        }
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      store.checkCommit();
      fs.renameSync(tmp, file);
      syncDir(fs, this.#dir);
      store.commitMeta(AUX_META + name, `${hexOf(tag)}:${size}`);
    } finally {
      this.#writing.delete(name);
    }
  }
}

function checkAuxName(name: string): void {
  if (typeof name !== "string" || !/^[a-z0-9-]{1,64}$/.test(name)) {
    throw new TypeError(
      `Auxiliary data name ${JSON.stringify(name)} is not 1-64 lowercase letters, digits or -`,
    );
  }
}

function hexOf(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
