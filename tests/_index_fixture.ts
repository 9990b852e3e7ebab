/**
 * Helpers of the saved-sync-index tests (tests/sync_index.test.ts, tests/sync_index_save.test.ts):
 * a database that counts the records its store hands out, an index built from scratch to compare
 * with, and the comparison. Not a test file.
 */
import assert from "node:assert/strict";
import { type Database, open } from "../mod.ts";
import { recordToOp } from "../core/op.ts";
import { ID_BYTES, type IndexSnapshot, SyncIndex } from "../core/sync/mod.ts";
import { storeOf } from "../core/database.ts";

/** `open({ path })` with a count of the records its store's `changes` hands out. */
export async function counted(dir: string): Promise<{ db: Database; reads: () => number }> {
  const db = await open({ path: dir });
  const store = storeOf(db);
  const changes = store.changes.bind(store);
  let n = 0;
  store.changes = async (after, options) => {
    const page = await changes(after, options);
    n += page.records.length;
    return page;
  };
  return { db, reads: () => n };
}

/** An index built from scratch, in a memory replica holding what `db` holds now. */
export async function fullIndex(db: Database): Promise<SyncIndex> {
  const copy = await open({ storage: "memory" });
  await copy.applyOps((await storeOf(db).changes(0, { limit: Infinity })).records.map(recordToOp));
  const index = await SyncIndex.build(copy);
  index.close();
  await copy.close();
  return index;
}

/** Asserts that two snapshots hold the same ids under the same keys, in the same order. */
export function sameAs(a: IndexSnapshot, b: IndexSnapshot): void {
  assert.equal(a.size, b.size);
  const x = new Uint8Array(ID_BYTES * a.size), y = new Uint8Array(ID_BYTES * b.size);
  a.copyIds(0, a.size, x, 0);
  b.copyIds(0, b.size, y, 0);
  assert.deepEqual(x, y);
  for (let i = 0; i < a.size; i++) assert.deepEqual(a.key(i), b.key(i));
  assert.deepEqual(a.fingerprints([0], [a.size]), b.fingerprints([0], [b.size]));
}
