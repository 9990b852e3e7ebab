/**
 * The trust side of one database: signing its own writes, and the check of
 * every foreign op before the intake (core/trust/verify.ts).
 *
 * Local writes: the records of the writes made in one turn are signed
 * together (one signature per chunk of 64, core/trust/signing.ts), then
 * queued in the order they were made. A write to a protected soul of
 * another key needs a certificate from that key, held through
 * {@link Trust.useCertificate}; without an identity a write to any
 * protected soul is refused.
 *
 * Foreign ops: a batch that holds nothing to check (no sig, keyless actors,
 * no protected soul: the case of every database without identities) goes
 * straight on. Otherwise refused ops are dropped and counted when the batch
 * came from a peer, and fail the whole call with a {@link TrustError} when
 * it did not.
 *
 * @module
 */
import type { Kernels } from "../kernels/types.ts";
import type { FieldRecord, Store } from "../store.ts";
import { checkOp, decodeOpRecords, type Op, opToRecord } from "../op.ts";
import type { ForeignIntake } from "./apply.ts";
import type { ApplyResult, CommitQueue, WriteResult } from "./commit_queue.ts";
import { decodeValue } from "../value_encoding.ts";
import { type Certificate, ownerOf, readCertificate, refusal } from "../trust/certificate.ts";
import type { Identity } from "../trust/identity.ts";
import { type Manifest, mayWrite, readManifest } from "../trust/manifest.ts";
import { signRecords } from "../trust/signing.ts";
import {
  type Checked,
  checkOps,
  type CheckOptions,
  needsCheck,
  revokedSoul,
  type TrustContext,
} from "../trust/verify.ts";

/**
 * An op refused by the trust rules (unsigned where a signature is needed, a
 * bad signature, a protected soul written without the right key or
 * certificate), or a local write this replica may not make.
 *
 * @example
 * ```ts
 * import { open, TrustError } from "../../mod.ts";
 * const db = await open({ storage: "memory" }); // no identity
 * const soul = `~${"ab".repeat(32)}/profile`; // a protected soul of some key
 * await db.put(soul, { name: "x" }).catch((e) => console.log(e instanceof TrustError)); // true
 * await db.close();
 * ```
 */
export class TrustError extends Error {
  override name = "TrustError";
}

/** One batch of local records waiting for its signature, and what to do with it then. */
interface Pending {
  readonly records: readonly FieldRecord[];
  readonly then: (signed: FieldRecord[]) => unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

const utf8 = new TextEncoder();
const NONE: readonly never[] = Object.freeze([]);

/** Signing and checking for one database. */
export class Trust {
  readonly #identity: Identity | undefined;
  readonly #kernels: Kernels;
  readonly #space: Uint8Array;
  readonly #ctx: TrustContext;
  /** Certificates this replica writes with, by issuer. */
  readonly #certs = new Map<string, Certificate[]>();
  /** The space's manifest in force, if any (core/trust/manifest.ts). */
  #manifest: Manifest | undefined;
  readonly #spaceName: string;
  #pending: Pending[] = [];
  #signing: Promise<void> = Promise.resolve();
  #scheduled = false;

  constructor(
    identity: Identity | undefined,
    kernels: Kernels,
    space: string,
    store: Store,
    now: () => number,
  ) {
    this.#identity = identity;
    this.#kernels = kernels;
    this.#space = utf8.encode(space);
    this.#spaceName = space;
    this.#ctx = {
      kernels,
      space: this.#space,
      now,
      revoked: async (issuer, id) => {
        const records = await store.readNode(revokedSoul(issuer));
        const r = records.find((x) => x.field === id);
        return r !== undefined && decodeValue(r.value) === true;
      },
      manifest: () => this.#manifest,
    };
  }

  /** The identity that signs this database's writes, if it has one. */
  get identity(): Identity | undefined {
    return this.#identity;
  }

  /** The check of foreign ops, for those (the network) that check before they relay. */
  get context(): TrustContext {
    return this.#ctx;
  }

  /**
   * Takes a certificate to write with (the owner's grant, see
   * core/trust/certificate.ts); throws a {@link TrustError} when it is not
   * valid or does not name this replica's key.
   */
  async useCertificate(bytes: Uint8Array): Promise<Certificate> {
    if (!(bytes instanceof Uint8Array)) throw new TypeError("a certificate is bytes (Uint8Array)");
    const id = this.#identity;
    if (id === undefined) {
      throw new TrustError("a certificate needs an identity to write with: open with one");
    }
    const cert = await readCertificate(bytes.slice());
    if (cert === undefined) throw new TrustError("not a certificate, or not signed by its issuer");
    if (!cert.grantees.includes(id.id)) {
      throw new TrustError("the certificate does not name this replica's key");
    }
    const list = this.#certs.get(cert.issuer) ?? [];
    this.#certs.set(cert.issuer, [...list.filter((c) => c.id !== cert.id), cert]);
    return cert;
  }

  /**
   * The certificate a local write of `fields` to `soul` needs (undefined for
   * a public soul or one of this replica's key); throws a
   * {@link TrustError} when it may not write there.
   */
  certificateFor(soul: string, fields: readonly string[]): Certificate | undefined {
    this.#checkWriter();
    const owner = ownerOf(soul);
    if (owner === undefined) return undefined;
    const id = this.#identity;
    if (id === undefined) {
      throw new TrustError(`soul ${soul.slice(0, 80)} is protected: writing it needs the owner's identity`);
    }
    if (owner === id.id) return undefined;
    const now = this.#ctx.now();
    let why = "no certificate from its owner is held here (db.useCertificate)";
    for (const cert of this.#certs.get(owner) ?? []) {
      let no: string | undefined;
      for (const f of fields) if ((no = refusal(cert, id.id, soul, f, now)) !== undefined) break;
      if (no === undefined) return cert;
      why = no;
    }
    throw new TrustError(`soul ${soul.slice(0, 80)} is protected by another key: ${why}`);
  }

  /** The space the signed writes are for. */
  get space(): string {
    return this.#spaceName;
  }

  /** The space's manifest in force, if any. */
  get manifest(): Manifest | undefined {
    return this.#manifest;
  }

  /**
   * Adopts the manifest in `bytes` when it is valid, for this space, and
   * newer (higher `seq`) than the one in force, whose owner it must share:
   * the first manifest adopted pins the space's owner. Resolves with whether
   * it was adopted.
   */
  async useManifest(bytes: Uint8Array): Promise<boolean> {
    if (!(bytes instanceof Uint8Array)) throw new TypeError("a manifest is bytes (Uint8Array)");
    const m = await readManifest(bytes, this.#spaceName);
    const now = this.#manifest;
    if (m === undefined || (now !== undefined && (m.owner !== now.owner || m.seq <= now.seq))) return false;
    this.#manifest = m;
    return true;
  }

  /** Throws a {@link TrustError} when the manifest in force does not let this replica write. */
  #checkWriter(): void {
    const m = this.#manifest;
    if (m === undefined || m.writers === "anyone") return;
    const id = this.#identity;
    if (id === undefined || !mayWrite(m, id.id)) {
      throw new TrustError(
        `this replica is not a writer of space ${this.#spaceName} (its manifest lists the writers)`,
      );
    }
  }

  /** Whether `ops` need the trust check (see `needsCheck`; in a space with a writers list, always). */
  needsCheck(ops: readonly Checked[]): boolean {
    const m = this.#manifest;
    return (m !== undefined && m.writers !== "anyone" && ops.length > 0) || needsCheck(ops);
  }

  /**
   * {@link certificateFor} a put's lists (`[soul, field, value, ...]` per
   * node, as `flattenFields` gives them): one certificate must cover them all.
   */
  certificateForPut(lists: readonly (readonly unknown[])[]): Certificate | undefined {
    this.#checkWriter();
    let cert: Certificate | undefined, first = true;
    for (const list of lists) {
      const soul = list[0] as string;
      if (soul.charCodeAt(0) !== 0x7e) continue;
      const fields: string[] = [];
      for (let i = 1; i < list.length; i += 2) fields.push(list[i] as string);
      const c = this.certificateFor(soul, fields);
      if (first) cert = c, first = false;
      else if (c !== cert) {
        throw new TrustError("a put that needs two certificates: write its nodes one by one");
      }
    }
    return cert;
  }

  /**
   * Signs `records` (with `cert` when they need it) together with the other
   * writes of this turn, then runs `then` with them, in the order of the
   * calls; resolves as `then`'s promise does. Without an identity, `then`
   * runs at once with the records as they are.
   */
  sign<T>(
    records: readonly FieldRecord[],
    cert: Certificate | undefined,
    then: (signed: FieldRecord[]) => Promise<T>,
  ): Promise<T> {
    const id = this.#identity;
    if (id === undefined) return then(records as FieldRecord[]);
    if (cert !== undefined) {
      // Rare (a grantee's write): signed on its own, in its turn.
      return this.#inTurn(() => signRecords(id, this.#kernels, this.#space, records, cert.bytes), then);
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ records, then, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(this.#flush);
      }
    });
  }

  /**
   * Queues local records: at once without an identity (they win their merge:
   * the clock was just ticked); signed first with one, and then queued as
   * `local` false, `own` true: the commit queue stores them blind unless a
   * foreign op as late was queued while they waited for the signature, and
   * merges them then (see `CommitQueue.enqueue`).
   */
  commitLocal(
    queue: CommitQueue,
    records: FieldRecord[],
    result: WriteResult,
    cert: Certificate | undefined,
  ): Promise<WriteResult> {
    if (this.#identity === undefined) {
      return queue.enqueue(true, records, NONE, NONE, result) as Promise<WriteResult>;
    }
    return this.sign(
      records,
      cert,
      (signed) => queue.enqueue(false, signed, NONE, NONE, result, undefined, true) as Promise<WriteResult>,
    );
  }

  /** Runs `work` after the signing before it, then `then` with its records. */
  #inTurn<T>(work: () => Promise<FieldRecord[]>, then: (signed: FieldRecord[]) => Promise<T>): Promise<T> {
    const done = this.#signing.then(work).then(then);
    this.#signing = done.then(() => {}, () => {});
    return done;
  }

  /** Signs the pending writes of a turn as one batch and hands each its records, in order. */
  #flush = (): void => {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    const id = this.#identity!;
    const all: FieldRecord[] = [];
    for (const p of batch) for (const r of p.records) all.push(r);
    const run = this.#signing.then(() => signRecords(id, this.#kernels, this.#space, all)).then(
      (signed) => {
        let at = 0;
        for (const p of batch) {
          const mine = signed.slice(at, at += p.records.length);
          try {
            Promise.resolve(p.then(mine)).then(p.resolve, p.reject);
          } catch (e) {
            p.reject(e);
          }
        }
      },
      (e) => {
        for (const p of batch) p.reject(e);
      },
    );
    this.#signing = run;
  };

  /**
   * Why each op is refused, or undefined for an accepted one
   * (core/trust/verify.ts); `undefined` when none needed a look.
   */
  check(ops: readonly Checked[], options?: CheckOptions): Promise<(string | undefined)[]> {
    return checkOps(this.#ctx, ops, options);
  }

  /** Whether the manifest in force lists the writers. */
  #listed(): boolean {
    return this.#manifest !== undefined && this.#manifest.writers !== "anyone";
  }

  /** Resolves once every local write handed to {@link sign} so far is signed and queued. */
  async settled(): Promise<void> {
    while (this.#scheduled || this.#pending.length > 0) await new Promise<void>((r) => queueMicrotask(r));
    await this.#signing;
  }

  /**
   * `applyOps` through the trust check: a batch with nothing to check goes
   * straight to `intake`; otherwise refused ops are dropped and counted in
   * `refused` (with a `source`) or fail the call with a {@link TrustError}
   * naming the first (without one). Malformed ops fail as the intake fails them.
   */
  admit(
    ops: readonly Op[] | Uint8Array,
    source: string | undefined,
    intake: ForeignIntake,
  ): Promise<ApplyResult> {
    if (ops instanceof Uint8Array) {
      const records = decodeOpRecords(ops);
      if (!this.needsCheck(records)) return intake.applyRecords(records, source);
      return this.check(records).then((why) => {
        const { kept, dropped } = keep(records, why, source);
        return intake.applyRecords(kept, source).then((r) => withRefused(r, dropped));
      });
    }
    if (!Array.isArray(ops) || (!opsNeedCheck(ops) && !this.#listed())) return intake.apply(ops, source);
    // Checked and copied now: the caller may change its ops once applyOps has returned.
    const records: FieldRecord[] = new Array(ops.length), copies: Op[] = new Array(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      try {
        checkOp(op);
      } catch (e) {
        (e as Error).message = `Op ${i} is invalid: ${(e as Error).message}`;
        throw e;
      }
      records[i] = opToRecord(copies[i] = copyOp(op, op.sig?.slice()));
    }
    return this.check(records).then((why) => {
      const { kept, dropped } = keep(copies, why, source);
      return intake.apply(kept, source).then((r) => withRefused(r, dropped));
    });
  }
}

/** A copy of a checked op that shares nothing the caller could change. */
function copyOp(op: Op, sig: Uint8Array | undefined): Op {
  const v = op.value;
  const value = v instanceof Uint8Array
    ? v.slice()
    : typeof v === "object" && v !== null
    ? { "#": v["#"] }
    : v;
  const copy = { soul: op.soul, field: op.field, value, state: op.state, actor: op.actor };
  return sig ? { ...copy, sig } : copy;
}

/** Whether ops (objects, unchecked) hold anything for the trust check: see `needsCheck`. */
function opsNeedCheck(ops: readonly Op[]): boolean {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as Partial<Op> | null;
    if (typeof op !== "object" || op === null) continue; // the intake refuses it
    if (op.sig !== undefined) return true;
    if (typeof op.actor === "string" && op.actor.charCodeAt(0) >= 0x38) return true;
    if (typeof op.soul === "string" && op.soul.charCodeAt(0) === 0x7e) return true;
  }
  return false;
}

/** The accepted ops of a checked batch; a refused one throws without a `source`. */
function keep<T>(items: readonly T[], why: readonly (string | undefined)[], source: string | undefined): {
  kept: T[];
  dropped: number;
} {
  const kept: T[] = [];
  for (let i = 0; i < items.length; i++) {
    if (why[i] === undefined) kept.push(items[i]);
    else if (source === undefined) throw new TrustError(`Op ${i} is refused: ${why[i]}`);
  }
  return { kept, dropped: items.length - kept.length };
}

function withRefused(r: ApplyResult, dropped: number): ApplyResult {
  return dropped === 0 ? r : { ...r, refused: (r.refused ?? 0) + dropped };
}
