/**
 * What bounds an awaited OPFS put, for the `browser` suite's report (page
 * side, bundled with bench/_browser_page.ts): how SQLite is set up in the
 * OPFS worker (journal mode, synchronous), and what the browser's own
 * primitives cost, timed in a throwaway dedicated worker on a fresh OPFS
 * file: `write` of 4 KiB through a sync access handle, the same followed by
 * `flush()`, and a message round trip to that worker; and awaited puts with
 * `durability: "process"` (`synchronous=NORMAL`: a WAL commit is not
 * flushed) beside `"power"` (`FULL`: flushed), to see what the flush adds.
 * Not a suite.
 *
 * @module
 */
import { open } from "../mod.ts";
import { storeOf } from "../core/database.ts";
import type { OpfsStore } from "../storage/opfs.ts";

/** The probe's figures (ms per call, medians are not needed: each is a mean over {@link CALLS}). */
export interface OpfsProbe {
  readonly journalMode: string;
  readonly synchronous: string;
  readonly sqliteVersion: string;
  /** ms per 4 KiB write growing the file, in place, in place + flush; per 64 KiB write in place. */
  readonly growMs: number;
  readonly writeMs: number;
  readonly writeFlushMs: number;
  readonly bigMs: number;
  readonly roundTripMs: number;
  /** ms per awaited put, durability `process` and `power`. */
  readonly putProcessMs: number;
  readonly putPowerMs: number;
}

const CALLS = 200;

/**
 * The worker's code: times `CALLS` 4 KiB writes that grow the file, the same
 * writes again in place, in place each followed by `flush()`, and one
 * 64 KiB write in place `CALLS` times; then answers echoes.
 */
const WORKER = `
onmessage = async (e) => {
  if (e.data !== "start") { postMessage(e.data); return; }
  const root = await navigator.storage.getDirectory();
  const name = "bench-probe-" + Math.random().toString(36).slice(2);
  const sah = await (await root.getFileHandle(name, { create: true })).createSyncAccessHandle();
  const buf = new Uint8Array(4096).fill(7), big = new Uint8Array(65536).fill(9);
  const time = (fn) => { const t = performance.now(); for (let i = 0; i < ${CALLS}; i++) fn(i); return (performance.now() - t) / ${CALLS}; };
  const growMs = time((i) => sah.write(buf, { at: i * 4096 }));
  const writeMs = time((i) => sah.write(buf, { at: i * 4096 }));
  const writeFlushMs = time((i) => { sah.write(buf, { at: i * 4096 }); sah.flush(); });
  const bigMs = time(() => sah.write(big, { at: 0 }));
  sah.close();
  await root.removeEntry(name);
  postMessage({ growMs, writeMs, writeFlushMs, bigMs });
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
    const prims = await answer(worker) as Pick<OpfsProbe, "growMs" | "writeMs" | "writeFlushMs" | "bigMs">;
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
