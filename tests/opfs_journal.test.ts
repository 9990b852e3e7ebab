// @server-only: the OPFS store's engine over fake OPFS files and a server SQLite driver
/**
 * The OPFS store's journal (storage/opfs_journal.ts under storage/opfs_sqlite.ts)
 * over fake OPFS files that model what a power loss keeps: a file's bytes as
 * they were at its last `flush()`. Checked: every commit that returned is
 * still there after a power loss at any point (its frame was flushed before
 * the commit returned), and after a crash with a torn frame at the end of a
 * journal slot; slots are reused after a fold, and a slot whose prefix a
 * crash tore is free. The real files, in Chromium, are tests/opfs.test.ts's.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  type DirHandle,
  JOURNAL_DIR,
  OpfsJournalFs,
  PREFIX_BYTES,
  type SyncHandle,
} from "../storage/opfs_journal.ts";
import { OpfsSqlite } from "../storage/opfs_sqlite.ts";
import { connect } from "../storage/sqlite_connect.ts";
import type { FieldRecord } from "../core/store.ts";
import { FOLD_RECORDS } from "../storage/sqlite_journaled.ts";

/** A fake OPFS file: what is written, and what a power loss would keep. */
class FakeFile implements SyncHandle {
  bytes = new Uint8Array(0);
  flushed = new Uint8Array(0);
  held = false;
  flushes = 0;

  read(buffer: Uint8Array, { at }: { at: number }): number {
    const n = Math.max(0, Math.min(buffer.length, this.bytes.length - at));
    buffer.set(this.bytes.subarray(at, at + n));
    return n;
  }

  write(buffer: Uint8Array, { at }: { at: number }): number {
    if (at + buffer.length > this.bytes.length) {
      const grown = new Uint8Array(at + buffer.length);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes.set(buffer, at);
    return buffer.length;
  }

  truncate(size: number): void {
    const cut = new Uint8Array(size);
    cut.set(this.bytes.subarray(0, size));
    this.bytes = cut;
  }

  getSize(): number {
    return this.bytes.length;
  }

  flush(): void {
    this.flushed = this.bytes.slice();
    this.flushes++;
  }

  close(): void {
    this.held = false;
  }
}

/** A fake OPFS directory of fake files (sync access handles exclusive, as in a browser). */
class FakeDir implements DirHandle {
  readonly kind = "directory";
  readonly dirs = new Map<string, FakeDir>();
  readonly files = new Map<string, FakeFile>();

  getDirectoryHandle(name: string): Promise<DirHandle> {
    let d = this.dirs.get(name);
    if (d === undefined) this.dirs.set(name, d = new FakeDir());
    return Promise.resolve(d);
  }

  getFileHandle(name: string) {
    let f = this.files.get(name);
    if (f === undefined) this.files.set(name, f = new FakeFile());
    const file = f;
    return Promise.resolve({
      kind: "file" as const,
      name,
      createSyncAccessHandle: () => {
        if (file.held) return Promise.reject(new Error("NoModificationAllowedError: the file is held"));
        file.held = true;
        return Promise.resolve(file as SyncHandle);
      },
    });
  }

  async *values() {
    for (const name of this.files.keys()) yield await this.getFileHandle(name);
  }

  /** The journal's slot files. */
  slots(): FakeFile[] {
    return [...this.dirs.get(JOURNAL_DIR)!.files.values()];
  }

  /** A power loss: every file back to what it held at its last flush; all handles let go. */
  powerLoss(): void {
    for (const f of this.slots()) {
      f.bytes = f.flushed.slice();
      f.held = false;
    }
  }
}

const utf8 = new TextEncoder();

function record(i: number): FieldRecord {
  return {
    soul: `s/${String(i).padStart(6, "0")}`,
    field: "f",
    value: utf8.encode(`value ${i}`),
    stateHi: 0,
    stateLo: i + 1,
    actorHi: 0,
    actorLo: 7,
  };
}

describe("the OPFS store's journal over fake OPFS files", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-opfsj-"));
  let n = 0;

  interface Engine {
    store: OpfsSqlite;
    journal: OpfsJournalFs;
    /** Ends it as a killed worker ends: SQLite's connection let go of, nothing folded, the handles freed. */
    crash(): void;
  }

  /**
   * The engine over `dir`'s journal and a SQLite file of its own (on disk: no power loss there), with
   * durability `power` (every frame flushed) unless `power` is false (`process`).
   */
  async function engine(dir: FakeDir, file: string, power = true): Promise<Engine> {
    const journal = await OpfsJournalFs.open(dir);
    const db = await connect(file, undefined, "process", 0);
    return {
      store: new OpfsSqlite(db, "test", journal, JOURNAL_DIR, power),
      journal,
      crash() {
        db.close();
        journal.close();
      },
    };
  }

  it("flushes every commit's frame before the commit returns: a power loss after it keeps it", async () => {
    const dir = new FakeDir(), file = path.join(tmp, `db-${++n}`);
    for (let i = 0; i < 20; i++) {
      const e = await engine(dir, file);
      assert.equal(e.store.lastSeq(), i, "every commit returned before the power loss is there");
      if (i > 0) {
        assert.deepEqual(e.store.readNode(record(i - 1).soul).map((r) => r.value), [record(i - 1).value]);
      }
      assert.equal(e.store.commit({ records: [record(i)] }), i + 1);
      e.crash();
      dir.powerLoss();
    }
  });

  it("with durability process, writes each frame without a flush, and a crashed worker loses none", async () => {
    const dir = new FakeDir(), file = path.join(tmp, `db-${++n}`);
    for (let i = 0; i < 20; i++) {
      const e = await engine(dir, file, false);
      assert.equal(e.store.lastSeq(), i, "every commit returned before the crash is there");
      const flushes = dir.slots().reduce((sum, f) => sum + f.flushes, 0);
      assert.equal(e.store.commit({ records: [record(i)] }), i + 1);
      const after = dir.slots().reduce((sum, f) => sum + f.flushes, 0);
      if (i > 0) assert.equal(after, flushes, "no flush for a commit into a slot already started");
      e.crash(); // the worker dies; the operating system keeps what was written (no power loss)
    }
  });

  it("ignores a torn frame at the end of a slot, and writes on after it", async () => {
    const dir = new FakeDir(), file = path.join(tmp, `db-${++n}`);
    let e = await engine(dir, file);
    for (let i = 0; i < 5; i++) e.store.commit({ records: [record(i)] });
    const [used] = e.journal.files();
    assert.equal(used.name, "journal-1.log");
    e.crash();
    const slot = dir.slots().find((f) => f.bytes.length > 0)!;
    slot.write(new Uint8Array([200, 0, 0, 0, 1, 2, 3, 4, 5]), { at: slot.bytes.length }); // promises 200 bytes
    e = await engine(dir, file);
    assert.equal(e.store.lastSeq(), 5);
    assert.deepEqual(e.journal.files().map((f) => f.name), ["journal-2.log"], "replayed, then a new file");
    assert.equal(e.store.commit({ records: [record(5)] }), 6);
    e.crash();
    e = await engine(dir, file);
    assert.equal(e.store.lastSeq(), 6);
    assert.deepEqual(e.store.readNode(record(5).soul).map((r) => r.seq), [6]);
    e.store.close();
    assert.deepEqual(e.journal.files(), [], "a clean close leaves the journal empty");
    e.journal.close();
  });

  it("reuses its slots across folds, and frees a slot whose prefix a crash tore", async () => {
    const dir = new FakeDir(), file = path.join(tmp, `db-${++n}`);
    let { store, journal } = await engine(dir, file);
    const batch = 1_000, batches = Math.ceil((3 * FOLD_RECORDS) / batch);
    for (let b = 0; b < batches; b++) {
      const records: FieldRecord[] = [];
      for (let i = b * batch; i < (b + 1) * batch; i++) records.push(record(i));
      store.commit({ records });
      store.list({ limit: 1 }); // folds what is journaled (as a background fold would)
    }
    assert.equal(dir.slots().length, 3, "three slots serve any number of journal files");
    store.close();
    journal.close();
    const torn = dir.slots()[0];
    torn.write(new Uint8Array([0x4c, 0x54, 0x4a]), { at: 0 }); // three bytes of a prefix
    const found = await OpfsJournalFs.open(dir);
    assert.deepEqual([found.files(), torn.bytes.length], [[], 0], "emptied: free");
    found.close();
    ({ store, journal } = await engine(dir, file));
    assert.equal(store.countLive(), batches * batch);
    assert.ok(dir.slots().every((f) => f.bytes.length === 0 || f.bytes.length >= PREFIX_BYTES));
    store.close();
    journal.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("refuses to open slots another worker holds, and holds none after", async () => {
    const dir = new FakeDir();
    const first = await OpfsJournalFs.open(dir);
    await assert.rejects(OpfsJournalFs.open(dir), /held/);
    first.close();
    (await OpfsJournalFs.open(dir)).close();
  });
});
