/**
 * The trust check of foreign ops, run before anything is merged, stored,
 * deferred or relayed. Per op:
 *
 * - unsigned: accepted in public souls under a keyless actor id (top bit
 *   clear); refused under a key's actor id (someone else's name) and in a
 *   protected soul `~<key>/…`;
 * - signed (core/trust/signing.ts): the sig must parse, its key must be the
 *   one the actor id is derived from, the leaf and proof must lead to a root
 *   the key signed; in a protected soul the key must be the owner's, or carry
 *   a certificate from the owner (core/trust/certificate.ts) that names it,
 *   covers the soul and field, has not expired by this replica's clock and
 *   has not been revoked here.
 *
 * A batch costs one signature check per chunk it holds: ops signed together
 * are grouped by (signature, root). Signatures that held are remembered (a
 * bounded set), so a gossip message checked before it is relayed is not
 * checked again when it is merged.
 *
 * @module
 */
import type { Kernels } from "../kernels/types.ts";
import { type Certificate, ownerOf, readCertificate, refusal, REVOKED } from "./certificate.ts";
import { actorOf, toHex, verifySignature } from "./identity.ts";
import { type Manifest, mayWrite } from "./manifest.ts";
import {
  chunkTree,
  leafHashes,
  parseSig,
  proofMatches,
  rootMessage,
  rootOf,
  type Signed,
  type SigParts,
} from "./signing.ts";
import { hlcWords } from "../clock.ts";

/** An op as the check reads it: a record's parts and its sig. */
export interface Checked extends Signed {
  readonly sig?: Uint8Array;
}

/** What the check needs of its database. */
export interface TrustContext {
  readonly kernels: Kernels;
  /** The space's name, UTF-8: part of every leaf. */
  readonly space: Uint8Array;
  /** This replica's clock (ms), for certificate expiry. */
  now(): number;
  /** Whether the owner `issuer` revoked certificate `id` (its `~<issuer>/~revoked` holds `true` there). */
  revoked(issuer: string, id: string): Promise<boolean>;
  /** The space's manifest, when it has one (core/trust/manifest.ts): with a writers list, only they write. */
  manifest(): Manifest | undefined;
}

/** Whether any op of a batch needs the check (signed, under a key's actor id, or in a protected soul). */
export function needsCheck(ops: readonly Checked[]): boolean {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.sig !== undefined || op.actorHi >= 0x80000000 || op.soul.charCodeAt(0) === 0x7e) return true;
  }
  return false;
}

/** Signatures that held: `key ‖ signature ‖ root` as a latin1 string (bounded). */
const good = new Set<string>();
const GOOD_MAX = 16_384;

/** The bytes of `parts`, one char each: a map key. */
function latin1(...parts: Uint8Array[]): string {
  let s = "";
  for (const b of parts) for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** One signature to check and the ops that depend on it. */
interface Group {
  readonly parts: SigParts;
  readonly root: Uint8Array;
  readonly ops: number[];
}

/**
 * Why each op of `ops` is refused (`undefined` for an accepted one): the
 * check above. Never throws for malformed input: it is a refusal.
 */
export async function checkOps(
  ctx: TrustContext,
  ops: readonly Checked[],
  options: CheckOptions = {},
): Promise<(string | undefined)[]> {
  const n = ops.length;
  const why: (string | undefined)[] = new Array(n).fill(undefined);
  const parts: (SigParts | undefined)[] = new Array(n);
  const signers: string[] = new Array(n);
  const signed: number[] = [];
  let lastKey: Uint8Array | undefined, lastHex = "", lastActorHi = 0, lastActorLo = 0;
  const manifest = ctx.manifest();
  const listed = manifest !== undefined && manifest.writers !== "anyone";
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    const owner = op.soul.charCodeAt(0) === 0x7e ? ownerOf(op.soul) : undefined;
    if (op.sig === undefined) {
      if (op.actorHi >= 0x80000000) why[i] = "unsigned op under a key's actor id";
      else if (owner !== undefined) why[i] = "unsigned op in a protected soul";
      else if (listed) why[i] = "unsigned op in a space with a writers list";
      continue;
    }
    const p = parseSig(op.sig);
    if (typeof p === "string") {
      why[i] = p;
      continue;
    }
    if (lastKey === undefined || !sameBytes(lastKey, p.publicKey)) {
      lastKey = p.publicKey, lastHex = toHex(p.publicKey);
      [lastActorHi, lastActorLo] = hlcWords(actorOf(p.publicKey));
    }
    if (op.actorHi !== lastActorHi || op.actorLo !== lastActorLo) {
      why[i] = "signed by a key that is not the actor's";
      continue;
    }
    if (listed && !mayWrite(manifest, lastHex)) {
      why[i] = "writer not in the space's manifest";
      continue;
    }
    if (owner !== undefined && owner !== lastHex && p.cert === undefined) {
      why[i] = "protected soul written by another key without a certificate";
      continue;
    }
    parts[i] = p, signers[i] = lastHex;
    signed.push(i);
  }
  if (signed.length === 0) return why;
  // Leaves in one batched hash. Ops of one chunk (same key, signature and size) are grouped: a chunk
  // whose every leaf is here gets its tree built once (about one hash per op) and each op's proof
  // compared with it; otherwise each op's root comes from its own proof. One check per (key, root).
  const list: Checked[] = signed.map((i) => ops[i]);
  const leaves = leafHashes(ctx.kernels, ctx.space, list);
  const chunks = new Map<string, number[]>();
  let prevHead: Uint8Array | undefined, prevList: number[] = [];
  for (let k = 0; k < signed.length; k++) {
    const head = ops[signed[k]].sig!.subarray(1, 99);
    if (prevHead !== undefined && sameBytes(prevHead, head)) {
      prevList.push(k);
      continue;
    }
    const key = latin1(head);
    let chunk = chunks.get(key);
    if (chunk === undefined) chunks.set(key, chunk = []);
    chunk.push(k);
    prevHead = head, prevList = chunk;
  }
  const groups = new Map<string, Group>();
  const group = (p: SigParts, root: Uint8Array, i: number | number[]) => {
    const key = latin1(p.publicKey, p.signature, root);
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { parts: p, root, ops: typeof i === "number" ? [i] : i });
    else if (typeof i === "number") g.ops.push(i);
    else g.ops.push(...i);
  };
  const leafAt = (k: number) => leaves.subarray(32 * k, 32 * k + 32);
  for (const chunk of chunks.values()) {
    const n = parts[signed[chunk[0]]]!.n;
    const byIndex = chunk.length === n ? new Array<Uint8Array>(n) : undefined;
    if (byIndex !== undefined) {
      for (const k of chunk) byIndex[parts[signed[k]]!.index] = leafAt(k);
    }
    if (byIndex !== undefined && !byIndex.includes(undefined as never)) {
      const tree = chunkTree(ctx.kernels, byIndex);
      const root = tree[tree.length - 1][0], fine: number[] = [];
      for (const k of chunk) {
        const i = signed[k], p = parts[i]!;
        if (proofMatches(tree, p.index, p.proof)) fine.push(i);
        else why[i] = "bad signature: its proof does not lead to its chunk's root";
      }
      if (fine.length > 0) group(parts[fine[0]]!, root, fine);
    } else {
      for (const k of chunk) {
        const i = signed[k], p = parts[i]!;
        group(p, rootOf(ctx.kernels, leafAt(k), p.n, p.index, p.proof), i);
      }
    }
  }
  // Verified VERIFY_BATCH at a time; with failFast, the first refusal ends the check (the batch is refused
  // whole), so a message of forged signatures costs one batch, not one verification per op.
  const todo = Array.from(groups).filter(([key]) => !good.has(key));
  for (let start = 0; start < todo.length; start += VERIFY_BATCH) {
    if (options.failFast && why.some((w) => w !== undefined)) {
      for (let j = start; j < todo.length; j++) {
        for (const i of todo[j][1].ops) why[i] ??= "not checked: the batch is refused";
      }
      return why;
    }
    await Promise.all(
      todo.slice(start, start + VERIFY_BATCH).map(async ([key, g]) => {
        const ok = await verifySignature(g.parts.publicKey, g.parts.signature, rootMessage(g.root));
        if (ok) {
          if (good.size >= GOOD_MAX) good.clear();
          good.add(key);
        } else for (const i of g.ops) why[i] = "bad signature";
      }),
    );
  }
  await checkCertificates(ctx, ops, parts, signers, why);
  return why;
}

/** Signatures verified at once: the event loop gets a turn between batches. */
const VERIFY_BATCH = 16;

/** Options of {@link checkOps}. */
export interface CheckOptions {
  /**
   * Stop at the first refused op (a gossip message is refused whole): the
   * ops not reached are refused as unchecked.
   */
  readonly failFast?: boolean;
}

/** The certificate checks of signed ops in protected souls of other keys (see the module comment). */
async function checkCertificates(
  ctx: TrustContext,
  ops: readonly Checked[],
  parts: readonly (SigParts | undefined)[],
  signers: readonly string[],
  why: (string | undefined)[],
): Promise<void> {
  const now = ctx.now();
  const certs = new Map<string, Promise<Certificate | undefined>>();
  const revoked = new Map<string, Promise<boolean>>();
  for (let i = 0; i < ops.length; i++) {
    const p = parts[i];
    if (why[i] !== undefined || p === undefined) continue;
    const owner = ownerOf(ops[i].soul);
    if (owner === undefined || owner === signers[i]) continue;
    const key = latin1(p.cert!);
    let c = certs.get(key);
    if (c === undefined) certs.set(key, c = readCertificate(p.cert!.slice()));
    const cert = await c;
    if (cert === undefined) {
      why[i] = "certificate malformed or not signed by its issuer";
      continue;
    }
    const no = refusal(cert, signers[i], ops[i].soul, ops[i].field, now);
    if (no !== undefined) {
      why[i] = no;
      continue;
    }
    let r = revoked.get(cert.id);
    if (r === undefined) revoked.set(cert.id, r = ctx.revoked(cert.issuer, cert.id));
    if (await r) why[i] = "certificate revoked";
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The soul where `issuer`'s revocations are written. */
export function revokedSoul(issuer: string): string {
  return `~${issuer}/${REVOKED}`;
}
