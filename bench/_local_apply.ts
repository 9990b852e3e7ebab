/**
 * The apply cases of the `local` suite, Lattice beside Yjs: foreign ops,
 * exported from another replica outside the timing, applied into a fresh
 * replica (Yjs: a Y.Doc's update applied to a fresh doc).
 * - decode of a 10k-op batch from the wire, the synchronous first step of
 *   applying it, timed by mitata (the one case here that mitata times);
 * - apply of 1M ops in one batch, in one batch given as its encoding (what a
 *   peer sends; no target of its own), and in batches of 10k (Yjs: a Y.Doc
 *   after 1M `Y.Map.set`, its `encodeStateAsUpdate` applied to a fresh doc);
 * - apply one op at a time: `applyOps([op])` awaited one by one (Yjs: one
 *   `Y.applyUpdate` per one-set update), timed in rounds (the median round).
 * Each 1M-op case runs in a fresh process of its own (bench/_local_child.ts
 * says why); the one-op-at-a-time case too.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import * as Y from "yjs";
import { decodeOps, encodeOps } from "../core/op.ts";
import type { BenchCase } from "../scripts/bench.ts";
import { APPLY_BATCH, foreignOps, ONE_WARM } from "./_local_child.ts";
import {
  APPLY_OPS,
  count,
  type Figure,
  type LocalRun,
  median,
  ONE_AT_A_TIME,
  runChild,
} from "./_local_measure.ts";

/** Ops of the mitata-timed decode case. */
const DECODE_OPS = 10_000;

/**
 * Rounds the one-at-a-time ops are timed in (the median round counts, as in
 * the other sequential cases): the first few thousand calls after a warm-up
 * ran up to twice as slow as the rest, in Lattice and Yjs alike, and a single
 * mean over all of them varied with that transient more than with the code.
 */
const ONE_ROUNDS = 4;
/** Issue targets: bulk apply ≥ 3× Yjs, one-op-at-a-time apply ≥ 2× Yjs. */
const BULK_OVER_YJS = 3;
const ONE_OVER_YJS = 2;

/** The name of the bulk apply case, whose database the open and RSS cases reuse. */
export const BULK_CASE = `apply ${count(APPLY_OPS)} foreign ops in one batch`;

/** The decode case for mitata, if `run` wants it. */
export async function decodeCase(run: LocalRun): Promise<BenchCase | undefined> {
  const decodeName = `decode ${count(DECODE_OPS)} foreign ops (mitata)`;
  if (run.wanted(decodeName)) {
    const ops = await foreignOps(DECODE_OPS);
    const wire = encodeOps(ops);
    const ydoc = new Y.Doc();
    const ymap = ydoc.getMap("fields");
    ydoc.transact(() => ops.forEach((op, i) => ymap.set(`${op.soul}/${op.field}`, i)));
    const yupdate = Y.encodeStateAsUpdate(ydoc);
    ydoc.destroy();
    return {
      name: decodeName,
      impls: { lattice: () => decodeOps(wire), yjs: () => Y.decodeUpdate(yupdate) },
    };
  }
  return undefined;
}

/**
 * Measures the apply cases `run` wants. The bulk case's replica is left in
 * `bulkDir` for the open and RSS cases; with `buildBulkDb` it is built there
 * even when the bulk case is not wanted.
 */
export async function measureApply(run: LocalRun, bulkDir: string, buildBulkDb: boolean): Promise<void> {
  const encodedCase = `apply ${count(APPLY_OPS)} foreign ops in one batch, encoded (as a peer sends them)`;
  const batchedCase = `apply ${count(APPLY_OPS)} foreign ops in batches of ${count(APPLY_BATCH)}`;
  const oneCase = "apply one op at a time";
  const needBulkDb = run.wanted(BULK_CASE) || buildBulkDb;
  const n = String(APPLY_OPS);
  if (run.wanted(BULK_CASE) || run.wanted(batchedCase) || run.wanted(encodedCase)) {
    // Each 1M-op case in a fresh process of its own (see _local_child.ts, `bulk`).
    run.log("yjs bulk update (child process)");
    const y = await runChild(["bulk", "yjs", n]) as { ns: number; bytes: number };
    const yjsBulk: Figure = {
      impl: "yjs",
      value: y.ns,
      how: `one Y.applyUpdate of a ${
        (y.bytes / 1e6).toFixed(1)
      } MB update into a fresh doc, in a fresh process`,
    };
    const lattice = async (how: string, dir: string) => {
      run.log(`lattice bulk apply: ${how} (child process)`);
      return await runChild(["bulk", "lattice", how, dir, n]) as { ns: number; bytes?: number };
    };
    if (needBulkDb) {
      const r = await lattice("one", bulkDir);
      if (run.wanted(BULK_CASE)) {
        run.rows.push({
          name: BULK_CASE,
          unit: "ns",
          subject: "lattice",
          figures: [
            {
              impl: "lattice",
              value: r.ns,
              how: "one applyOps call into a fresh replica, in a fresh process",
            },
            yjsBulk,
          ],
          targets: [{ over: "yjs", atLeast: BULK_OVER_YJS }],
        });
      }
    }
    if (run.wanted(encodedCase)) {
      const r = await lattice("encoded", join(run.root, "encoded"));
      rmSync(join(run.root, "encoded"), { recursive: true, force: true });
      run.rows.push({
        name: encodedCase,
        unit: "ns",
        subject: "lattice",
        figures: [
          {
            impl: "lattice",
            value: r.ns,
            how: `one applyOps call with a ${(r.bytes! / 1e6).toFixed(1)} MB encoding, in a fresh process`,
          },
          yjsBulk,
        ],
      });
    }
    if (run.wanted(batchedCase)) {
      const r = await lattice("batched", join(run.root, "batched"));
      rmSync(join(run.root, "batched"), { recursive: true, force: true });
      run.rows.push({
        name: batchedCase,
        unit: "ns",
        subject: "lattice",
        figures: [
          {
            impl: "lattice",
            value: r.ns,
            how: `${APPLY_OPS / APPLY_BATCH} applyOps calls, awaited in turn, in a fresh process`,
          },
          yjsBulk,
        ],
        targets: run.wanted(BULK_CASE) ? undefined : [{ over: "yjs", atLeast: BULK_OVER_YJS }],
      });
    }
  } else if (needBulkDb) {
    run.log("building the 1M-field database (child process)");
    await runChild(["bulk", "lattice", "one", bulkDir, n]);
  }
  if (run.wanted(oneCase)) {
    // In fresh processes, as the bulk cases (see _local_child.ts, `one`).
    run.log(`${oneCase} (child processes)`);
    const per = [String(ONE_AT_A_TIME), String(ONE_ROUNDS)];
    const lat = await runChild(["one", "lattice", join(run.root, "one"), ...per]) as { means: number[] };
    const yjs = await runChild(["one", "yjs", ...per]) as { means: number[] };
    const how = (what: string) =>
      `${ONE_AT_A_TIME} ${what}, after ${ONE_WARM} warm-up, in a fresh process; median of ${ONE_ROUNDS} rounds' means`;
    run.rows.push({
      name: oneCase,
      unit: "ns",
      subject: "lattice",
      figures: [
        {
          impl: "lattice",
          value: median(lat.means),
          how: how("applyOps([op]) awaited in turn into a fresh replica"),
        },
        {
          impl: "yjs",
          value: median(yjs.means),
          how: how("Y.applyUpdate of one-set updates into a fresh doc"),
        },
      ],
      targets: [{ over: "yjs", atLeast: ONE_OVER_YJS }],
    });
  }
}
