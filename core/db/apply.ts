/**
 * The foreign intake: `applyOps` of ops from elsewhere (peers, imports), in
 * each of the shapes they come in — an array of op objects, their encoding
 * (bytes, straight into records with no op object), or a large array on a
 * store that commits in parts (copied into columns, foreign_batch.ts). Every
 * op is checked first, and a batch with any invalid op is refused whole;
 * ops too far ahead of the wall clock are set aside (deferral.ts); the rest
 * goes to the commit queue.
 *
 * Each path checks and converts its ops in one loop of its own, with one
 * scratch {@link OpWords} for every call: per op, no closure and no object
 * but the record.
 *
 * @module
 */
import { type Clock, wordsMs } from "../clock.ts";
import { checkOpWords, decodeOpRecords, type Op, OpWords, recordToOp } from "../op.ts";
import { ByteWriter } from "../byte_writer.ts";
import { encodeValue, writeValue } from "../value_encoding.ts";
import type { DeferOp, FieldRecord } from "../store.ts";
import { repeatsKeys } from "../merge.ts";
import type { ApplyResult, CommitQueue } from "./commit_queue.ts";
import type { Deferral } from "./deferral.ts";
import { columnRecord, foreignRecord, type OpsInParts, PARTS_MIN } from "./foreign_batch.ts";

/**
 * Options of `Database.applyOps`.
 *
 * @example
 * ```ts
 * import { type ApplyOptions, open, type Op } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * const farFuture = "ffffffffffff0000"; // a state: 48-bit ms, then a 16-bit counter
 * const op: Op = { soul: "x", field: "f", value: 1, state: farFuture, actor: "00000000000000aa" };
 * const options: ApplyOptions = { source: "peer-1" }; // what a peer should not send is refused, not thrown
 * console.log(await db.applyOps([op], options)); // { applied: 0, ignored: 0, deferred: 0, refused: 1 }
 * await db.close();
 * ```
 */
export interface ApplyOptions {
  /**
   * The peer the ops came from. Ops a peer should not send — stamped beyond
   * the horizon, or deferred past its quota — are then dropped and counted
   * (`refused`) instead of failing the batch, and its deferred ops count
   * against its quota (without it, against their actor's).
   */
  readonly source?: string;
}

const NONE: readonly never[] = Object.freeze([]);

/** The source of {@link ApplyOptions}, checked. */
export function checkSource(options: ApplyOptions): string | undefined {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("applyOps options must be an object");
  }
  const { source } = options;
  if (source !== undefined && (typeof source !== "string" || source === "")) {
    throw new TypeError("applyOps source must be a non-empty string (a peer id)");
  }
  return source;
}

/** {@link checkOpWords} of op `i` of a batch: an error names the op. */
function checkOpAt(op: unknown, i: number, w: OpWords): asserts op is Op {
  try {
    checkOpWords(op, w);
  } catch (e) {
    (e as Error).message = `Op ${i} is invalid: ${(e as Error).message}`;
    throw e;
  }
}

/** The foreign intake of one database. */
export class ForeignIntake {
  readonly #clock: Clock;
  readonly #queue: CommitQueue;
  readonly #deferral: Deferral;
  /** Scratch of the checks (synchronous, so one serves every call). */
  readonly #words = new OpWords();

  constructor(clock: Clock, queue: CommitQueue, deferral: Deferral) {
    this.#clock = clock;
    this.#queue = queue;
    this.#deferral = deferral;
  }

  /** `Database.applyOps` with its source checked, throwing for bad input. */
  apply(ops: readonly Op[] | Uint8Array, source: string | undefined): Promise<ApplyResult> {
    if (ops instanceof Uint8Array) return this.#applyEncoded(ops, source);
    if (!Array.isArray(ops)) throw new TypeError("applyOps takes an array of ops or their encoding");
    if (ops.length >= PARTS_MIN && this.#queue.sync?.beginParts !== undefined) {
      return this.#applyInParts(ops, source);
    }
    const limit = this.#clock.futureLimit();
    let now: FieldRecord[] = NONE as never[];
    let defer: DeferOp[] = NONE as never[];
    let refused = 0;
    const w = this.#words; // checked and read in one pass; a repeated actor only once
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      checkOpAt(op, i, w);
      const ms = wordsMs(w.stateHi, w.stateLo);
      if (ms > limit) {
        const d = this.#deferral.setAside(op, ms, i, source);
        if (d === undefined) refused++;
        else (defer.length === 0 ? defer = [] : defer).push(d);
        continue;
      }
      const r = foreignRecord(
        op.soul,
        op.field,
        encodeValue(op.value),
        w.stateHi,
        w.stateLo,
        w.actorHi,
        w.actorLo,
        op.sig,
      );
      if (now.length === 0) now = [r]; // one slot (a batch of one op is the rule), where a first push reserves 17
      else now.push(r);
    }
    return this.#commit(now, defer, refused, source);
  }

  /**
   * Commits the checked records of a foreign batch (or its `parts`) and
   * stores its deferred ops aside; `refused` of its ops were dropped (a
   * peer's, see {@link ApplyOptions.source}).
   */
  #commit(
    now: readonly FieldRecord[],
    defer: readonly DeferOp[],
    refused: number,
    source: string | undefined,
    parts?: OpsInParts,
  ): Promise<ApplyResult> {
    if (defer.length === 0 && refused === 0) { // the rule
      return this.#queue.enqueue(false, now, NONE, NONE, undefined, parts) as Promise<ApplyResult>;
    }
    return this.#deferral.commit(now, defer, refused, source === undefined, parts);
  }

  /** An encoded batch: decoded and checked as decodeOps does, straight into records. */
  #applyEncoded(ops: Uint8Array, source: string | undefined): Promise<ApplyResult> {
    return this.applyRecords(decodeOpRecords(ops), source);
  }

  /** Records decoded from an encoded batch (`decodeOpRecords`: checked), merged as {@link apply} merges ops. */
  applyRecords(records: FieldRecord[], source: string | undefined): Promise<ApplyResult> {
    const limit = this.#clock.futureLimit();
    let due = 0; // records before the first future one
    while (due < records.length && wordsMs(records[due].stateHi, records[due].stateLo) <= limit) due++;
    if (due === records.length) return this.#commit(records, NONE, 0, source); // nothing to defer (the rule)
    const now = records.slice(0, due), defer: DeferOp[] = [];
    let refused = 0;
    for (let i = due; i < records.length; i++) {
      const r = records[i], ms = wordsMs(r.stateHi, r.stateLo);
      if (ms <= limit) now.push(r);
      else {
        const d = this.#deferral.setAside(recordToOp(r), ms, i, source);
        if (d === undefined) refused++;
        else defer.push(d);
      }
    }
    return this.#commit(now, defer, refused, source);
  }

  /**
   * A large batch (see {@link PARTS_MIN}) on a store that commits in parts:
   * checked and copied into columns, then committed in parts unless a key
   * comes twice.
   */
  #applyInParts(list: readonly Op[], source: string | undefined): Promise<ApplyResult> {
    const limit = this.#clock.futureLimit();
    const n = list.length;
    const cols = {
      souls: new Array<string>(n),
      fields: new Array<string>(n),
      valueEnd: new Uint32Array(n),
      stateHi: new Uint32Array(n),
      stateLo: new Uint32Array(n),
      actorHi: new Uint32Array(n),
      actorLo: new Uint32Array(n),
    };
    const values = new ByteWriter(8 * n);
    const defer: DeferOp[] = [];
    let sigs: (Uint8Array | undefined)[] | undefined, deferred: Uint8Array | undefined;
    let refused = 0;
    const w = this.#words;
    for (let i = 0; i < n; i++) {
      const op = list[i];
      checkOpAt(op, i, w);
      const { stateHi, stateLo } = w, ms = wordsMs(stateHi, stateLo);
      if (ms > limit) {
        const d = this.#deferral.setAside(op, ms, i, source);
        if (d === undefined) refused++;
        else defer.push(d);
        (deferred ??= new Uint8Array(n))[i] = 1, cols.valueEnd[i] = values.pos;
        continue;
      }
      cols.souls[i] = op.soul, cols.fields[i] = op.field;
      writeValue(values, op.value);
      cols.valueEnd[i] = values.pos;
      cols.stateHi[i] = stateHi,
        cols.stateLo[i] = stateLo,
        cols.actorHi[i] = w.actorHi,
        cols.actorLo[i] = w.actorLo;
      if (op.sig) (sigs ??= [])[i] = op.sig.slice();
    }
    const batch: OpsInParts = { n, ...cols, values: values.buf, sigs, deferred };
    if (!repeatsKeys(list)) return this.#commit(NONE, defer, refused, source, batch);
    // A key twice: merged whole, as a smaller batch is.
    const now: FieldRecord[] = [];
    for (let i = 0; i < n; i++) if (deferred?.[i] !== 1) now.push(columnRecord(batch, i));
    return this.#commit(now, defer, refused, source);
  }
}
