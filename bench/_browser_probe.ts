/**
 * What bounds an awaited OPFS put, for the `browser` suite's report (page
 * side, bundled with bench/_browser_page.ts). Not a suite.
 *
 * 1. An awaited put traced: {@link TRACED} awaited puts into an OPFS
 *    database with an identity (as `open` gives a page's database: every
 *    write signed), the time of each split at the moments the page can see
 *    — the signature asked for and given (the identity's `sign`, wrapped),
 *    the commit posted to the worker and answered (the store's `commit`,
 *    wrapped) — averaged over the puts; then the same puts without an
 *    identity (keyless: no signature), and signed with durability `power`.
 * 2. The browser's primitives, in a throwaway dedicated worker on a fresh
 *    OPFS file: appending through a sync access handle with `write()` alone
 *    and with `write()` + `flush()` at 128 B, 4 KiB and 256 KiB (a tight
 *    loop); a message round trip to the worker back to back, and with the
 *    page busy {@link BUSY_US} µs before each (as it is while it signs: the
 *    worker has gone to sleep, and waking it is part of the trip); the same
 *    busy round trip when the worker appends a put's frame ({@link FRAME} B)
 *    before it answers; and a WebCrypto Ed25519 signature alone.
 *
 * The report (bench/_browser_report.ts) adds up the last two and the
 * signature: what an awaited signed put cannot go below here, whatever the
 * code around them.
 *
 * @module
 */
import { createIdentity, type Identity, loadKernels } from "../mod.ts";
import { Database } from "../core/database.ts";
import type { CommitBatch } from "../core/store.ts";
import { OpfsStore } from "../storage/opfs.ts";

/** The sizes of the appends timed in a tight loop (bytes). */
export const PROBE_SIZES = [128, 4096, 262_144] as const;
/** Bytes of the journal frame of one of the bench's puts (three fields, signed), appended on each busy round trip. */
export const FRAME = 618;
/** µs the page spins before each busy round trip. */
export const BUSY_US = 50;
/** Awaited puts traced per database (after {@link WARM} more). */
export const TRACED = 300;
const WARM = 20;
/** Calls per primitive. */
const CALLS = 200;

/** The mean parts of an awaited put (µs): each the time between two moments the page sees. */
export interface PutTrace {
  /** From `put` to the signature asked for (records made, leaf hashes, Merkle tree); 0 keyless. */
  readonly beforeSign: number;
  /** The signature (WebCrypto Ed25519, asked for to given); 0 keyless. */
  readonly sign: number;
  /** From the signature (or `put`, keyless) to the commit posted to the worker. */
  readonly toCommit: number;
  /** The commit: posted to the worker, which journals its frame, and answered. */
  readonly commit: number;
  /** From the answer to the put's promise resolved. */
  readonly after: number;
  readonly total: number;
}

/** The probe's figures: µs unless named otherwise. */
export interface OpfsProbe {
  readonly journalMode: string;
  readonly synchronous: string;
  readonly sqliteVersion: string;
  readonly signed: PutTrace;
  readonly keyless: PutTrace;
  /** An awaited signed put's total with durability `power` (the journal frame flushed too). */
  readonly signedPower: number;
  /** Per append of each of {@link PROBE_SIZES}: `write()` alone, and `write()` + `flush()`. */
  readonly writeUs: readonly number[];
  readonly writeFlushUs: readonly number[];
  /** A message round trip to a worker, back to back. */
  readonly roundTrip: number;
  /** A round trip after the page was busy {@link BUSY_US} µs (the worker asleep). */
  readonly roundTripIdle: number;
  /** The same, the worker appending {@link FRAME} bytes before it answers. */
  readonly roundTripAppend: number;
  /** A WebCrypto Ed25519 signature, awaited one after another. */
  readonly signature: number;
}

const now = () => performance.now();

/** {@link TRACED} awaited puts into the OPFS database at `path`, timed in parts. */
async function tracePuts(path: string, identity: Identity | undefined, durability: "process" | "power") {
  const store = await OpfsStore.open(path, { durability });
  let t = { put: 0, asked: 0, signed: 0, posted: 0, answered: 0 };
  const commit = store.commit.bind(store);
  (store as { commit: (b: CommitBatch) => Promise<number> }).commit = (b) => {
    t.posted = now();
    return commit(b).then((seq) => (t.answered = now(), seq));
  };
  const signer = identity && Object.create(identity, {
    sign: {
      value: async (m: Uint8Array) => {
        t.asked = now();
        const s = await identity.sign(m);
        t.signed = now();
        return s;
      },
    },
  }) as Identity;
  const db = await Database.create({ store, kernels: await loadKernels(), identity: signer });
  const sum = { beforeSign: 0, sign: 0, toCommit: 0, commit: 0, after: 0, total: 0 };
  try {
    const tag = `${identity ? "s" : "k"}-${durability}`;
    for (let i = 0; i < WARM + TRACED; i++) {
      t = { put: now(), asked: 0, signed: 0, posted: 0, answered: 0 };
      await db.put(`${tag}/${i}`, { name: `user ${i}`, age: i % 97, active: (i & 1) === 0 });
      const end = now();
      if (i < WARM) continue;
      const ready = identity ? t.signed : t.put;
      if (identity) sum.beforeSign += t.asked - t.put, sum.sign += t.signed - t.asked;
      sum.toCommit += t.posted - ready;
      sum.commit += t.answered - t.posted;
      sum.after += end - t.answered;
      sum.total += end - t.put;
    }
  } finally {
    await db.close();
  }
  const mean = (ms: number) => ms * 1000 / TRACED;
  return {
    beforeSign: mean(sum.beforeSign),
    sign: mean(sum.sign),
    toCommit: mean(sum.toCommit),
    commit: mean(sum.commit),
    after: mean(sum.after),
    total: mean(sum.total),
  } satisfies PutTrace;
}

/**
 * The worker of the primitives: `start` times the appends of each size
 * (tight loops, µs) and opens a file for `append` calls, which write
 * {@link FRAME} bytes at its end and answer; anything else is echoed.
 */
const WORKER = `
let sah, at = 0;
const frame = new Uint8Array(${FRAME}).fill(7);
const root = navigator.storage.getDirectory();
const name = "bench-probe-" + Math.random().toString(36).slice(2);
onmessage = async (e) => {
  if (e.data === "append") { sah.write(frame, { at }); at += frame.length; postMessage(0); return; }
  if (e.data === "end") { sah.close(); await (await root).removeEntry(name); postMessage(0); return; }
  if (e.data !== "start") { postMessage(e.data); return; }
  sah = await (await (await root).getFileHandle(name, { create: true })).createSyncAccessHandle();
  const time = (fn) => { const t = performance.now(); for (let i = 0; i < ${CALLS}; i++) fn(); return (performance.now() - t) * 1000 / ${CALLS}; };
  const writeUs = [], writeFlushUs = [];
  for (const size of ${JSON.stringify(PROBE_SIZES)}) {
    const buf = new Uint8Array(size).fill(7);
    sah.truncate(0), at = 0;
    writeUs.push(time(() => { sah.write(buf, { at }); at += size; }));
    sah.truncate(0), at = 0;
    writeFlushUs.push(time(() => { sah.write(buf, { at }); at += size; sah.flush(); }));
  }
  sah.truncate(0), at = 0;
  postMessage({ writeUs, writeFlushUs });
};`;

/** The primitives (see the module comment). */
async function primitives() {
  const url = URL.createObjectURL(new Blob([WORKER], { type: "text/javascript" }));
  const worker = new Worker(url);
  const call = (m: unknown) =>
    new Promise<unknown>((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.postMessage(m);
    });
  const spin = () => {
    const end = now() + BUSY_US / 1000;
    while (now() < end) { /* the page busy, as while it signs */ }
  };
  /** µs per round trip of message `m`, the page busy before each when `busy`. */
  const trips = async (m: unknown, busy: boolean) => {
    let sum = 0;
    for (let i = 0; i < CALLS; i++) {
      if (busy) spin();
      const t = now();
      await call(m);
      sum += now() - t;
    }
    return sum * 1000 / CALLS;
  };
  try {
    const { writeUs, writeFlushUs } = await call("start") as { writeUs: number[]; writeFlushUs: number[] };
    const roundTrip = await trips(1, false);
    const roundTripIdle = await trips(1, true);
    const roundTripAppend = await trips("append", true);
    await call("end");
    const identity = await createIdentity();
    const message = new Uint8Array(48).fill(1);
    for (let i = 0; i < 20; i++) await identity.sign(message);
    const t = now();
    for (let i = 0; i < CALLS; i++) await identity.sign(message);
    const signature = (now() - t) * 1000 / CALLS;
    return { writeUs, writeFlushUs, roundTrip, roundTripIdle, roundTripAppend, signature };
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
}

/** Traces awaited puts in the OPFS database at `path` (removed by the caller) and times the primitives. */
export async function probeOpfs(path: string): Promise<OpfsProbe> {
  const first = await OpfsStore.open(path);
  const { journalMode, synchronous } = first.info;
  const sqliteVersion = first.sqliteVersion;
  await first.close();
  const identity = await createIdentity();
  const signed = await tracePuts(path, identity, "process");
  const keyless = await tracePuts(path, undefined, "process");
  const signedPower = (await tracePuts(path, identity, "power")).total;
  return { journalMode, synchronous, sqliteVersion, signed, keyless, signedPower, ...await primitives() };
}
