/**
 * The database row of the `vector` suite (bench/vector.bench.ts): a SQLite
 * database (temp directory) holding the large data set's vectors under a
 * declared index (`db.createIndex`), opened through the public library
 * (`open` of mod.ts) twice:
 * - without a saved graph: the index was declared and the database closed
 *   before its graph was built, so nothing was saved; `open` resolves once
 *   the stored vectors are read (searches are exact scans) and the graph is
 *   rebuilt in the background: open time, then time to `state: "ready"`;
 * - with the graph saved at the close that followed: `open` restores it,
 *   open time and time to ready.
 * The vectors are written as concurrent `put`s (of their stored form, f32
 * little-endian bytes) before the index is declared.
 * Not a suite.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open, type OpenedDatabase } from "../mod.ts";
import { EF_CONSTRUCTION, K, type Log, M } from "./_vector_measure.ts";

/** One open of the database. */
export interface OpenFigures {
  /** From calling `open()` until it resolved. */
  readonly openMs: number;
  /** From calling `open()` until the index said `state: "ready"`. */
  readonly readyMs: number;
  /** The index's state when `open()` resolved. */
  readonly stateAtOpen: string;
}

export interface DbFigures {
  readonly count: number;
  readonly dim: number;
  /** Writing the vectors (concurrent puts), before the index was declared. */
  readonly writeMs: number;
  readonly unsaved: OpenFigures;
  /** The close after the rebuild, which saved the graph. */
  readonly closeMs: number;
  readonly saved: OpenFigures;
}

const FIELD = "v";
const BATCH = 1_000;

async function openAndWait(path: string, log: Log, what: string): Promise<[OpenedDatabase, OpenFigures]> {
  const t = performance.now();
  const db = await open({ path, storage: "sqlite" });
  const openMs = performance.now() - t;
  const stateAtOpen = db.indexes()[0]?.state ?? "none";
  log(`database ${what}: open ${(openMs / 1000).toFixed(2)} s, index ${stateAtOpen}`);
  let last = performance.now();
  for (;;) {
    const info = db.indexes()[0];
    if (info === undefined) throw new Error("the reopened database has no index");
    if (info.state === "ready") break;
    if (performance.now() - last >= 10_000) {
      last = performance.now();
      log(`database ${what}: graph ${info.building?.done.toLocaleString("en")}/${info.building?.total}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return [db, { openMs, readyMs: performance.now() - t, stateAtOpen }];
}

/** Measures the database row over `rows` (cosine, the suite's M and efConstruction). */
export async function measureDatabase(rows: readonly Float32Array[], log: Log): Promise<DbFigures> {
  const dim = rows[0].length;
  const path = mkdtempSync(join(tmpdir(), "lattice-bench-vector-db-"));
  try {
    let db = await open({ path, storage: "sqlite" });
    const t = performance.now();
    for (let start = 0; start < rows.length; start += BATCH) {
      const puts: Promise<unknown>[] = [];
      for (let i = start; i < Math.min(rows.length, start + BATCH); i++) {
        // As stored (little-endian f32 bytes): a Float32Array is taken only by a field already indexed.
        const v = rows[i];
        puts.push(db.put(`doc/${i}`, { [FIELD]: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) }));
      }
      await Promise.all(puts);
      if (start % (20 * BATCH) === 0 && start > 0) {
        log(`database: ${start.toLocaleString("en")} vectors written`);
      }
    }
    const writeMs = performance.now() - t;
    log(`database: ${rows.length.toLocaleString("en")} vectors written in ${(writeMs / 1000).toFixed(1)} s`);
    const declared = await db.createIndex({
      field: FIELD,
      dim,
      metric: "cosine",
      m: M,
      efConstruction: EF_CONSTRUCTION,
    });
    if (declared.state !== "building") {
      throw new Error(`the index was ${declared.state} at once: nothing to rebuild`);
    }
    await db.close(); // before the graph is built: nothing saved

    let unsaved: OpenFigures, saved: OpenFigures;
    [db, unsaved] = await openAndWait(path, log, "without a saved graph");
    const count = db.indexes()[0].count;
    if (count !== rows.length) throw new Error(`the rebuilt index holds ${count} of ${rows.length}`);
    const tc = performance.now();
    await db.close();
    const closeMs = performance.now() - tc;

    [db, saved] = await openAndWait(path, log, "with the saved graph");
    if (saved.stateAtOpen !== "ready") throw new Error("the saved graph was not restored on open");
    const hits = await db.search({ vector: rows[0], k: K });
    if (hits[0]?.soul !== "doc/0") throw new Error(`the restored index missed doc/0: ${hits[0]?.soul}`);
    await db.close();
    return { count: rows.length, dim, writeMs, unsaved, closeMs, saved };
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}
