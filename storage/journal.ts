/**
 * The journal of the SQLite engine: an append-only file of commit frames in
 * the database directory. A commit is acknowledged once its frame is written
 * to the journal (and, with `durability: "power"`, synced); SQLite receives
 * the journaled records later, many commits per transaction ("folding"),
 * after which the journal file is deleted. On open, whatever journal files a
 * crash left are replayed into SQLite before anything else happens.
 *
 * One write system call per commit instead of one SQLite transaction (a
 * B-tree update per field, a WAL frame per touched page) is what makes small
 * commits cheap: about 1 µs for the write on this machine's Linux, against
 * 23 µs or more for the smallest SQLite commit.
 *
 * File format (all integers little-endian):
 * - header, 8 bytes: `LTCJ` then format version 1 as u32;
 * - frames, each: u32 payload length, u32 CRC-32 (IEEE) of the payload, the
 *   payload:
 *   - f64 seq of the first record (records take consecutive seqs), u32
 *     record count, u32 meta count;
 *   - per record: u32 soul length, soul (UTF-8), u32 field length, field, u32
 *     value length, value, u32 stateHi, stateLo, actorHi, actorLo, u32 sig length or
 *     0xFFFFFFFF for none, sig;
 *   - per meta entry: u32 key length, key, u32 value length, value.
 *
 * A frame whose length runs past the end of the file or whose CRC does not
 * match ends the file's replay: it is a write the process did not finish (so
 * its commit was never acknowledged), or damage from power loss without
 * `durability: "power"`.
 *
 * A full disk is a `DiskFullError` (storage/disk_full.ts): a failed append is
 * cut off the file, and a file that cannot be created leaves none behind
 * (a header-less file would stop the replay); {@link JournalFile.createWhenPossible}
 * lets a store open on a full disk and create its journal file on the first
 * write that finds room.
 *
 * @module
 */
import { ByteWriter, putBytes } from "../core/byte_writer.ts";
import type { HostFs } from "./_host.ts";
import { asDiskFull, isDiskFull } from "./disk_full.ts";
import type { FieldRecord, StoredRecord } from "../core/store.ts";

/** First 4 bytes of every journal file. */
const MAGIC = 0x4a43544c; // "LTCJ" read as a little-endian u32
const FORMAT = 1;
export const HEADER_BYTES = 8;
const NO_SIG = 0xffffffff;

/** The part of the host's file calls (`node:fs`, or Deno's) the journal uses. */
export type JournalFs = Pick<
  HostFs,
  | "openSync"
  | "writeSync"
  | "ftruncateSync"
  | "fdatasyncSync"
  | "fsyncSync"
  | "closeSync"
  | "readFileSync"
  | "readdirSync"
  | "unlinkSync"
>;

/** One decoded frame. */
export interface JournalFrame {
  readonly records: StoredRecord[];
  readonly meta: [string, string][];
}

/** What {@link readJournal} found in one file. */
export interface JournalContents {
  readonly frames: JournalFrame[];
  /** Bytes at the end that did not form a whole, intact frame (0 after a clean write). */
  readonly tornBytes: number;
}

// ---------------------------------------------------------------- CRC-32

/**
 * CRC-32 tables for four bytes at a time ("slicing by 4"): `CRC_TABLE[k *
 * 256 + b]` is the CRC of byte `b` followed by `k` zero bytes. A frame of one
 * small record is checked in about 80 ns instead of 155.
 */
const CRC_TABLE = (() => {
  const t = new Int32Array(1024);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let k = 256; k < 1024; k++) t[k] = (t[k - 256] >>> 8) ^ t[t[k - 256] & 0xff];
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib) of `bytes[start, end)`. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const t = CRC_TABLE;
  let c = -1, i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 | bytes[i + 3] << 24;
    c = t[768 + (c & 0xff)] ^ t[512 + ((c >>> 8) & 0xff)] ^ t[256 + ((c >>> 16) & 0xff)] ^ t[c >>> 24];
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

// ---------------------------------------------------------------- encoding

const utf8 = new TextEncoder();
const utf8d = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A growable byte buffer for frames, reused between commits. */
export class FrameWriter extends ByteWriter {
  constructor() {
    super(64 * 1024);
  }

  u32(n: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, n, true);
    this.pos += 4;
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.ensure(b.length);
    putBytes(this.buf, this.pos, b);
    this.pos += b.length;
  }

  string(s: string): void {
    // Worst case 3 bytes per UTF-16 unit; written in place, length patched after.
    this.ensure(4 + s.length * 3);
    const at = this.pos, n = s.length, buf = this.buf;
    if (n <= 64) { // short ASCII (most souls and field names): byte by byte, no encoder call or view
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + 4 + i] = c;
      }
      if (i === n) {
        this.view.setUint32(at, n, true);
        this.pos = at + 4 + n;
        return;
      }
    }
    const { written } = utf8.encodeInto(s, buf.subarray(at + 4));
    this.view.setUint32(at, written, true);
    this.pos = at + 4 + written;
  }
}

/**
 * Encodes one commit as a whole frame (header included), in `w` from
 * position 0; returns the frame's length.
 */
export function encodeFrame(
  w: FrameWriter,
  firstSeq: number,
  records: readonly FieldRecord[],
  meta: readonly (readonly [string, string])[],
): number {
  w.pos = 8;
  w.ensure(16);
  w.view.setFloat64(w.pos, firstSeq, true);
  w.pos += 8;
  w.u32(records.length);
  w.u32(meta.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    w.string(r.soul);
    w.string(r.field);
    w.bytes(r.value);
    w.ensure(20);
    const v = w.view, p = w.pos;
    v.setUint32(p, r.stateHi, true);
    v.setUint32(p + 4, r.stateLo, true);
    v.setUint32(p + 8, r.actorHi, true);
    v.setUint32(p + 12, r.actorLo, true);
    w.pos = p + 16;
    if (r.sig === undefined) w.u32(NO_SIG);
    else w.bytes(r.sig);
  }
  for (let i = 0; i < meta.length; i++) {
    w.string(meta[i][0]);
    w.string(meta[i][1]);
  }
  const length = w.pos - 8;
  w.view.setUint32(0, length, true);
  w.view.setUint32(4, crc32(w.buf, 8, w.pos), true);
  return w.pos;
}

/** Decodes one frame's payload; throws on anything malformed. */
function decodePayload(bytes: Uint8Array, start: number, end: number): JournalFrame {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = start;
  const need = (n: number) => {
    if (p + n > end) throw new RangeError("journal frame ends early");
  };
  const u32 = () => {
    need(4);
    const n = v.getUint32(p, true);
    p += 4;
    return n;
  };
  const blob = (): Uint8Array => {
    const n = u32();
    need(n);
    // A copy: the file's buffer is dropped after replay.
    const b = bytes.slice(p, p + n);
    p += n;
    return b;
  };
  const str = (): string => {
    const n = u32();
    need(n);
    const s = utf8d.decode(bytes.subarray(p, p + n));
    p += n;
    return s;
  };
  need(16);
  let seq = v.getFloat64(p, true);
  p += 8;
  const count = u32(), metaCount = u32();
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError("journal frame has a bad seq");
  const records: StoredRecord[] = [];
  for (let i = 0; i < count; i++) {
    const soul = str(), field = str(), value = blob();
    need(16);
    const stateHi = v.getUint32(p, true), stateLo = v.getUint32(p + 4, true);
    const actorHi = v.getUint32(p + 8, true), actorLo = v.getUint32(p + 12, true);
    p += 16;
    need(4);
    const sigLen = v.getUint32(p, true);
    let sig: Uint8Array | undefined;
    if (sigLen === NO_SIG) p += 4;
    else sig = blob();
    records.push(
      sig === undefined
        ? { soul, field, value, stateHi, stateLo, actorHi, actorLo, seq: seq++ }
        : { soul, field, value, stateHi, stateLo, actorHi, actorLo, sig, seq: seq++ },
    );
  }
  const meta: [string, string][] = [];
  for (let i = 0; i < metaCount; i++) meta.push([str(), str()]);
  if (p !== end) throw new RangeError("journal frame has trailing bytes");
  return { records, meta };
}

/**
 * Reads a journal file's bytes: its intact frames in order, and how many
 * bytes at the end were not a whole intact frame. Throws when the file is
 * not a journal at all.
 */
export function readJournal(bytes: Uint8Array, name = "journal"): JournalContents {
  const frames: JournalFrame[] = [];
  const reader = journalFrames(bytes, name);
  for (let r = reader.next();; r = reader.next()) {
    if (r.done) return { frames, tornBytes: r.value };
    frames.push(r.value);
  }
}

/**
 * The intact frames of a journal file's bytes, one at a time, so that a
 * replay holds one frame's records at once, not the whole file's; returns
 * (as the generator's value) how many bytes at the end were not a whole
 * intact frame. Throws when the file is not a journal at all.
 */
export function* journalFrames(bytes: Uint8Array, name = "journal"): Generator<JournalFrame, number> {
  if (bytes.length < HEADER_BYTES) return bytes.length;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== MAGIC) throw new Error(`${name} is not a Lattice journal`);
  const format = v.getUint32(4, true);
  if (format !== FORMAT) {
    throw new Error(`${name} has journal format ${format}; this Lattice reads format ${FORMAT}`);
  }
  let p = HEADER_BYTES;
  while (p + 8 <= bytes.length) {
    const length = v.getUint32(p, true), crc = v.getUint32(p + 4, true);
    const start = p + 8, end = start + length;
    if (end > bytes.length || crc32(bytes, start, end) !== crc) break;
    let frame: JournalFrame;
    try {
      frame = decodePayload(bytes, start, end);
    } catch {
      break; // a checksum collision on damaged bytes: treat as the torn end
    }
    p = end;
    yield frame;
  }
  return bytes.length - p;
}

// ---------------------------------------------------------------- files

/** Journal files are `journal-<generation>.log`, replayed in generation order. */
const FILE = /^journal-(\d{1,15})\.log$/;

/** The journal files in `dir`, oldest generation first. */
export function journalFiles(fs: JournalFs, dir: string): { gen: number; name: string }[] {
  const out: { gen: number; name: string }[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = FILE.exec(name);
    if (m) out.push({ gen: Number(m[1]), name });
  }
  return out.sort((a, b) => a.gen - b.gen);
}

/** The file name of generation `gen`. */
export function journalName(gen: number): string {
  return `journal-${gen}.log`;
}

/** An open journal file that commits append to. */
export class JournalFile {
  readonly path: string;
  readonly gen: number;
  #dir: string;
  #fs: JournalFs;
  #fd = -1;
  #sync: boolean;
  /** Whether the file exists (see {@link createWhenPossible}). */
  #created = false;
  /** Older journal files whose records the memtable of this one holds too: removed with it. */
  #replaces: readonly string[];
  #broken: Error | undefined;
  /** Bytes written so far, header included. */
  bytes = 0;

  private constructor(
    fs: JournalFs,
    dir: string,
    path: string,
    gen: number,
    sync: boolean,
    replaces: readonly string[],
  ) {
    this.#fs = fs;
    this.#dir = dir;
    this.path = path;
    this.gen = gen;
    this.#sync = sync;
    this.#replaces = replaces;
  }

  /**
   * Creates generation `gen` in `dir` (failing if it exists) and writes its
   * header. With `sync`, every append is followed by `fdatasync`, and the
   * directory is synced so that the new file's name survives power loss.
   * `replaces` are older journal files whose records the caller holds with
   * this one's: {@link remove} deletes them too. On a full disk it throws a
   * `DiskFullError` and leaves no file behind.
   */
  static create(
    fs: JournalFs,
    dir: string,
    sep: string,
    gen: number,
    sync: boolean,
    replaces: readonly string[] = [],
  ): JournalFile {
    const j = new JournalFile(fs, dir, dir + sep + journalName(gen), gen, sync, replaces);
    j.#create();
    return j;
  }

  /**
   * {@link create}, except that on a full disk the file is created by the
   * first write instead (which fails with a `DiskFullError` until there is
   * room): a database opens on a full disk, and its writes resume once space
   * is freed.
   */
  static createWhenPossible(
    fs: JournalFs,
    dir: string,
    sep: string,
    gen: number,
    sync: boolean,
    replaces: readonly string[] = [],
  ): JournalFile {
    const j = new JournalFile(fs, dir, dir + sep + journalName(gen), gen, sync, replaces);
    try {
      j.#create();
    } catch (e) {
      if (!isDiskFull(e)) throw e;
    }
    return j;
  }

  /** Creates the file with its header; on failure removes what it created. */
  #create(): void {
    const fs = this.#fs;
    let fd: number;
    try {
      // Append mode: every write lands at the end, also after a failed one was cut off.
      fd = fs.openSync(this.path, "ax");
    } catch (e) {
      throw asDiskFull(e, this.#dir, "create a journal file");
    }
    this.#fd = fd;
    const header = new Uint8Array(HEADER_BYTES);
    const v = new DataView(header.buffer);
    v.setUint32(0, MAGIC, true);
    v.setUint32(4, FORMAT, true);
    try {
      this.#append(header, header.length);
      if (this.#sync) syncDir(fs, this.#dir);
    } catch (e) {
      this.#fd = -1;
      try {
        fs.closeSync(fd);
        fs.unlinkSync(this.path); // a file without its header would stop the replay of later ones
      } catch {
        // the next create of this generation reports it
      }
      throw asDiskFull(e, this.#dir, "create a journal file");
    }
    this.#created = true;
  }

  /**
   * Appends `bytes[0, length)` whole (and syncs them when asked). On failure
   * (a full disk, say: a `DiskFullError`) the file is cut back to its last
   * whole frame and the error thrown; if even that fails, the journal
   * refuses every later write, since a frame after a torn one would never be
   * replayed.
   */
  write(bytes: Uint8Array, length: number): void {
    if (this.#broken !== undefined) throw this.#broken;
    if (!this.#created) this.#create();
    this.#append(bytes, length);
  }

  #append(bytes: Uint8Array, length: number): void {
    const at = this.bytes;
    try {
      let off = 0;
      // No position argument: the file is in append mode (Deno's node:fs emulates positioned
      // writes with extra seeks, 4× slower for small frames).
      while (off < length) off += this.#fs.writeSync(this.#fd, bytes, off, length - off);
      if (this.#sync) this.#fs.fdatasyncSync(this.#fd);
    } catch (e) {
      try {
        this.#fs.ftruncateSync(this.#fd, at);
      } catch (e2) {
        this.#broken = new Error(`The journal ${this.path} cannot be written after a failed write: ${e2}`);
      }
      throw asDiskFull(e, this.#dir, "write to the journal");
    }
    this.bytes = at + length;
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#fs.closeSync(fd);
  }

  /**
   * Closes and deletes the file, and the older files it replaces (syncing
   * the directory when appends are synced too).
   */
  remove(): void {
    this.close();
    if (this.#created) this.#fs.unlinkSync(this.path);
    this.#created = false;
    for (const path of this.#replaces) {
      try {
        this.#fs.unlinkSync(path);
      } catch (e) {
        if ((e as { code?: string }).code !== "ENOENT") throw e;
      }
    }
    this.#replaces = [];
    if (this.#sync) syncDir(this.#fs, this.#dir);
  }
}

/** Syncs a directory's entries (a new or deleted file name); not every platform allows it. */
export function syncDir(fs: JournalFs, dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch {
    // Windows cannot open directories; its file creation is durable without it.
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}
