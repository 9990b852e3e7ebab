/**
 * What replication reads out of a database as a whole: pages of the ops
 * committed after a seq (`exportOps`), and a hash of the whole state that
 * does not depend on the order ops arrived in (`stateHash`, how tests and
 * benches check that replicas converged).
 *
 * @module
 */
import { hlcFromWords } from "../clock.ts";
import type { Kernels } from "../kernels/types.ts";
import { encodeOps, type Op, recordToOp } from "../op.ts";
import { compareCodePoints } from "../order.ts";
import type { Store, StoredRecord } from "../store.ts";
import { decodeValue } from "../value_encoding.ts";

/** Options of `Database.exportOps`. */
export interface ExportOptions {
  /** Ops committed after this seq (default 0: all). */
  after?: number;
  /** About this many ops per page (default 10,000; whole nodes at a time). */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: number;
}

/** One page of `Database.exportOps`. */
export interface ExportPage {
  ops: Op[];
  /** After the last page: the `after` of the next export. */
  seq: number;
  /** Present while more pages follow. */
  cursor?: number;
}

/** Records read per page when the whole state is hashed. */
const HASH_PAGE = 10_000;

/** One page of the ops committed after `options.after`. */
export async function exportOps(store: Store, options: ExportOptions): Promise<ExportPage> {
  const after = options.after ?? 0, limit = options.limit ?? 10_000;
  const page = await store.changes(after, { limit, cursor: options.cursor });
  const ops = page.records.map(recordToOp);
  return page.cursor === undefined ? { ops, seq: page.seq } : { ops, seq: page.seq, cursor: page.cursor };
}

/** SHA-256 (hex) of every record of `store`, each encoded as an op, in (soul, field) order. */
export async function stateHash(store: Store, kernels: Kernels): Promise<string> {
  const all: StoredRecord[] = [];
  for (let cursor: number | undefined;;) {
    const page = await store.changes(0, { limit: HASH_PAGE, cursor });
    for (const r of page.records) all.push(r);
    if ((cursor = page.cursor) === undefined) break;
  }
  all.sort((a, b) => compareCodePoints(a.soul, b.soul) || compareCodePoints(a.field, b.field));
  const parts = all.map((r) =>
    encodeOps([{
      soul: r.soul,
      field: r.field,
      value: decodeValue(r.value),
      state: hlcFromWords(r.stateHi, r.stateLo),
      actor: hlcFromWords(r.actorHi, r.actorLo),
    }])
  );
  const total = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(total);
  let at = 0;
  for (const p of parts) buf.set(p, (at += p.length) - p.length);
  return Array.from(kernels.sha256(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}
