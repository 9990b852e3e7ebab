/**
 * What bounds an awaited OPFS put, for the `browser` suite's report (page
 * side, bundled with bench/_browser_page.ts): how SQLite is set up in the
 * OPFS worker (journal mode, synchronous), and what the browser's own
 * primitives cost, timed in a throwaway dedicated worker on a fresh OPFS
 * file: appending through a sync access handle with `write()` alone and with
 * `write()` + `flush()`, at the size of an awaited put's journal frame
 * (128 B), 4 KiB, and a 2,000-op batch's frame (256 KiB); and a message round
 * trip to that worker. Then awaited puts into a database opened with
 * `durability: "process"` and `"power"` (each commit's journal frame is
 * flushed either way; `power` also flushes SQLite's folds). Not a suite.
 *
 * @module
 */
import { open } from "../mod.ts";
import { storeOf } from "../core/database.ts";
import type { OpfsStore } from "../storage/opfs.ts";

/** The sizes of the appends timed (bytes). */
export const PROBE_SIZES = [128, 4096, 262_144] as const;

/** The probe's figures (ms per call, medians are not needed: each is a mean over {@link CALLS}). */
export interface OpfsProbe {
  readonly journalMode: string;
  readonly synchronous: string;
  readonly sqliteVersion: string;
  /** ms per append of each of {@link PROBE_SIZES}: `write()` alone, and `write()` + `flush()`. */
  readonly writeMs: readonly number[];
  readonly writeFlushMs: readonly number[];
  readonly roundTripMs: number;
  /** ms per awaited put, durability `process` and `power`. */
  readonly putProcessMs: number;
  readonly putPowerMs: number;
}

const CALLS = 200;

/**
 * The worker's code: for each size, `CALLS` appends with `write()` alone,
 * then `CALLS` with `write()` + `flush()`; then it answers echoes.
 */
const WORKER = `
onmessage = async (e) => {
  if (e.data !== "start") { postMessage(e.data); return; }
  const root = await navigator.storage.getDirectory();
  const name = "bench-probe-" + Math.random().toString(36).slice(2);
  const sah = await (await root.getFileHandle(name, { create: true })).createSyncAccessHandle();
  const time = (fn) => { const t = performance.now(); for (let i = 0; i < ${CALLS}; i++) fn(); return (performance.now() - t) / ${CALLS}; };
  const writeMs = [], writeFlushMs = [];
  for (const size of ${JSON.stringify(PROBE_SIZES)}) {
    const buf = new Uint8Array(size).fill(7);
    let at = 0;
    sah.truncate(0);
    writeMs.push(time(() => { sah.write(buf, { at }); at += size; }));
    sah.truncate(0);
    at = 0;
    writeFlushMs.push(time(() => { sah.write(buf, { at }); at += size; sah.flush(); }));
  }
  sah.close();
  await root.removeEntry(name);
  postMessage({ writeMs, writeFlushMs });
};`;

function answer(worker: Worker): Promise<unknown> {
  return new Promise((resolve) => worker.addEventListener("message", (e) => resolve(e.data), { once: true }));
}

/** ms per awaited put into the OPFS database at `path`, opened with `durability`. */
async function awaitedPuts(path: string, durability: "process" | "power"): Promise<number> {
  const db = await open({ storage: "opfs", path, durability });
  try {
    const t = performance.now();
    for (let i = 0; i < CALLS / 2; i++) await db.put(`${durability}/${i}`, { i });
    return (performance.now() - t) / (CALLS / 2);
  } finally {
    await db.close();
  }
}

/** Opens an OPFS database at `path` (removed by the caller) and times the primitives. */
export async function probeOpfs(path: string): Promise<OpfsProbe> {
  const db = await open({ storage: "opfs", path });
  const store = storeOf(db) as unknown as OpfsStore;
  const { journalMode, synchronous } = store.info;
  const sqliteVersion = store.sqliteVersion;
  await db.close();
  const putProcessMs = await awaitedPuts(path, "process");
  const putPowerMs = await awaitedPuts(path, "power");
  const url = URL.createObjectURL(new Blob([WORKER], { type: "text/javascript" }));
  const worker = new Worker(url);
  try {
    worker.postMessage("start");
    const prims = await answer(worker) as Pick<OpfsProbe, "writeMs" | "writeFlushMs">;
    const t = performance.now();
    for (let i = 0; i < CALLS; i++) {
      const next = answer(worker);
      worker.postMessage(i);
      await next;
    }
    const roundTripMs = (performance.now() - t) / CALLS;
    return {
      journalMode,
      synchronous,
      sqliteVersion,
      ...prims,
      roundTripMs,
      putProcessMs,
      putPowerMs,
    };
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
}
