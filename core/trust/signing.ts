/**
 * Signatures of ops: one Ed25519 signature per commit chunk, each op still
 * verifiable on its own.
 *
 * An op's **leaf** is the SHA-256 of a canonical, domain-separated encoding
 * of (space, soul, field, value, state, actor): the tag `lattice/op/v1\0`,
 * then space, soul, field and the encoded value (core/value_encoding.ts),
 * each as a 4-byte big-endian length and its bytes, then state and actor as
 * 8 bytes each. A commit's ops are signed in chunks of up to
 * {@link MAX_LEAVES}: the leaves of a chunk make a Merkle tree (an inner node
 * is SHA-256 of `0x01 ‖ left ‖ right`; a last node without a sibling goes up
 * as it is), and the key signs `lattice/commit/v1\0 ‖ root`. Each op carries
 * in its `sig` slot what it needs to be checked alone:
 *
 * ```
 * byte 0      format: 1 (or 2: a certificate follows the proof)
 * 1..33       the signer's Ed25519 public key
 * 33..97      the signature of the chunk's root
 * 97..99      leaves in the chunk, n (u16, 1..64)
 * 99..101     this op's leaf index (u16, < n)
 * 101..       the sibling hashes from leaf to root, 32 bytes each
 * (format 2)  u16 length, then the certificate (core/trust/certificate.ts)
 * ```
 *
 * A chunk of one op has no siblings: 101 bytes. Verifying a batch costs one
 * signature check per chunk it holds (~40 µs with WebCrypto) plus a few
 * hashes per op, so ops written together are verified together cheaply,
 * and an op that travels alone is still checked on its own.
 *
 * @module
 */
import { ByteWriter } from "../byte_writer.ts";
import type { Kernels } from "../kernels/types.ts";
import type { FieldRecord } from "../store.ts";
import { type Identity, PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from "./identity.ts";

/** Most ops under one signature: a proof then holds at most 6 hashes (293 bytes a sig). */
export const MAX_LEAVES = 64;
/** `sig` format: signature and proof. */
export const SIG_PLAIN = 1;
/** `sig` format: signature, proof and a certificate. */
export const SIG_CERTIFIED = 2;
const HEAD = 1 + PUBLIC_KEY_BYTES + SIGNATURE_BYTES + 4;
/** Largest certificate a sig may carry. */
export const MAX_CERT_BYTES = 4096;

const utf8 = new TextEncoder();
const LEAF_TAG = utf8.encode("lattice/op/v1\0");
const ROOT_TAG = utf8.encode("lattice/commit/v1\0");

/** What a leaf covers: a record's soul, field, encoded value, state and actor. */
export type Signed = Pick<
  FieldRecord,
  "soul" | "field" | "value" | "stateHi" | "stateLo" | "actorHi" | "actorLo"
>;

function putU32(w: ByteWriter, x: number): void {
  w.ensure(4);
  w.view.setUint32(w.pos, x);
  w.pos += 4;
}

function putText(w: ByteWriter, s: string): void {
  w.ensure(4 + 3 * s.length);
  const at = w.pos;
  w.pos += 4;
  const { written } = utf8.encodeInto(s, w.buf.subarray(w.pos));
  w.view.setUint32(at, written);
  w.pos += written;
}

/** Appends the leaf encoding of `r` in `space` to `w`. */
export function writeLeaf(w: ByteWriter, space: Uint8Array, r: Signed): void {
  w.ensure(LEAF_TAG.length + 4 + space.length);
  w.buf.set(LEAF_TAG, w.pos);
  w.pos += LEAF_TAG.length;
  putU32(w, space.length);
  w.buf.set(space, w.pos);
  w.pos += space.length;
  putText(w, r.soul);
  putText(w, r.field);
  putU32(w, r.value.length);
  w.ensure(r.value.length + 16);
  w.buf.set(r.value, w.pos);
  w.pos += r.value.length;
  w.view.setUint32(w.pos, r.stateHi);
  w.view.setUint32(w.pos + 4, r.stateLo);
  w.view.setUint32(w.pos + 8, r.actorHi);
  w.view.setUint32(w.pos + 12, r.actorLo);
  w.pos += 16;
}

/** The leaf hashes of `records[start..end)`, 32 bytes each, back to back (one batched hash). */
export function leafHashes(
  kernels: Kernels,
  space: Uint8Array,
  records: readonly Signed[],
  start = 0,
  end = records.length,
): Uint8Array {
  const w = new ByteWriter(128 * (end - start) + 64);
  const ends = new Uint32Array(end - start);
  for (let i = start; i < end; i++) {
    writeLeaf(w, space, records[i]);
    ends[i - start] = w.pos;
  }
  return kernels.sha256Batch(w.buf.subarray(0, w.pos), ends);
}

const pair = new Uint8Array(65);

/** SHA-256 of `0x01 ‖ a ‖ b`. */
function inner(kernels: Kernels, a: Uint8Array, b: Uint8Array): Uint8Array {
  pair[0] = 1;
  pair.set(a, 1);
  pair.set(b, 33);
  return kernels.sha256(pair);
}

/** The levels of the Merkle tree over `n` leaf hashes (level 0 the leaves; the last level the root). */
function levels(kernels: Kernels, leaves: Uint8Array, n: number): Uint8Array[][] {
  const level: Uint8Array[] = [];
  for (let i = 0; i < n; i++) level.push(leaves.subarray(32 * i, 32 * i + 32));
  return chunkTree(kernels, level);
}

/** The levels of the Merkle tree over the leaf hashes `leaves` (level 0 the leaves; the last the root). */
export function chunkTree(kernels: Kernels, leaves: Uint8Array[]): Uint8Array[][] {
  let level = leaves;
  const out = [level];
  while (level.length > 1) {
    const up: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      up.push(i + 1 < level.length ? inner(kernels, level[i], level[i + 1]) : level[i]);
    }
    out.push(up);
    level = up;
  }
  return out;
}

/** The message a chunk's key signs: the tag and the root. */
export function rootMessage(root: Uint8Array): Uint8Array {
  const m = new Uint8Array(ROOT_TAG.length + 32);
  m.set(ROOT_TAG);
  m.set(root, ROOT_TAG.length);
  return m;
}

/**
 * `records` (all written by `identity`) signed: a copy of each with its
 * `sig`, one signature per chunk of {@link MAX_LEAVES}. `cert` (a
 * certificate's bytes) is carried by each when the writer needs one.
 */
export async function signRecords(
  identity: Identity,
  kernels: Kernels,
  space: Uint8Array,
  records: readonly FieldRecord[],
  cert?: Uint8Array,
): Promise<FieldRecord[]> {
  const out: FieldRecord[] = new Array(records.length);
  const chunks: Promise<void>[] = [];
  for (let start = 0; start < records.length; start += MAX_LEAVES) {
    const end = Math.min(records.length, start + MAX_LEAVES), n = end - start;
    const tree = levels(kernels, leafHashes(kernels, space, records, start, end), n);
    const root = tree[tree.length - 1][0];
    chunks.push(
      identity.sign(rootMessage(root)).then((signature) => {
        for (let i = 0; i < n; i++) {
          const r = records[start + i];
          out[start + i] = { ...r, sig: sigBlob(identity.publicKey, signature, tree, n, i, cert) };
        }
      }),
    );
  }
  await Promise.all(chunks);
  return out;
}

/** The `sig` of leaf `index` of a chunk of `n` whose tree is `tree`. */
function sigBlob(
  publicKey: Uint8Array,
  signature: Uint8Array,
  tree: Uint8Array[][],
  n: number,
  index: number,
  cert: Uint8Array | undefined,
): Uint8Array {
  const proof: Uint8Array[] = [];
  for (let level = 0, i = index; level < tree.length - 1; level++, i >>= 1) {
    const sibling = i ^ 1;
    if (sibling < tree[level].length) proof.push(tree[level][sibling]);
  }
  const size = HEAD + 32 * proof.length + (cert ? 2 + cert.length : 0);
  const b = new Uint8Array(size);
  b[0] = cert ? SIG_CERTIFIED : SIG_PLAIN;
  b.set(publicKey, 1);
  b.set(signature, 1 + PUBLIC_KEY_BYTES);
  const at = 1 + PUBLIC_KEY_BYTES + SIGNATURE_BYTES;
  b[at] = n >> 8, b[at + 1] = n & 0xff, b[at + 2] = index >> 8, b[at + 3] = index & 0xff;
  for (let k = 0; k < proof.length; k++) b.set(proof[k], HEAD + 32 * k);
  if (cert) {
    const c = HEAD + 32 * proof.length;
    b[c] = cert.length >> 8, b[c + 1] = cert.length & 0xff;
    b.set(cert, c + 2);
  }
  return b;
}

/** Whether `proof` holds exactly the siblings of leaf `index` in `tree` (see {@link chunkTree}). */
export function proofMatches(tree: Uint8Array[][], index: number, proof: Uint8Array): boolean {
  let k = 0;
  for (let level = 0, i = index; level < tree.length - 1; level++, i >>= 1) {
    const sibling = i ^ 1;
    if (sibling >= tree[level].length) continue;
    const h = tree[level][sibling];
    if (32 * k + 32 > proof.length) return false;
    for (let b = 0; b < 32; b++) if (proof[32 * k + b] !== h[b]) return false;
    k++;
  }
  return 32 * k === proof.length;
}

/** The number of sibling hashes on the path of leaf `index` of a chunk of `n`. */
export function proofLength(n: number, index: number): number {
  let count = 0;
  for (let width = n, i = index; width > 1; width = (width + 1) >> 1, i >>= 1) {
    if ((i ^ 1) < width) count++;
  }
  return count;
}

/** A parsed `sig` (views into it). */
export interface SigParts {
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
  readonly n: number;
  readonly index: number;
  readonly proof: Uint8Array;
  readonly cert: Uint8Array | undefined;
}

/** The parts of a `sig`, or a sentence saying why it is malformed. */
export function parseSig(b: Uint8Array): SigParts | string {
  if (b.length < HEAD) return "sig too short";
  const format = b[0];
  if (format !== SIG_PLAIN && format !== SIG_CERTIFIED) return `unknown sig format ${format}`;
  const at = 1 + PUBLIC_KEY_BYTES + SIGNATURE_BYTES;
  const n = b[at] << 8 | b[at + 1], index = b[at + 2] << 8 | b[at + 3];
  if (n < 1 || n > MAX_LEAVES || index >= n) return "sig chunk out of range";
  const proofEnd = HEAD + 32 * proofLength(n, index);
  let cert: Uint8Array | undefined;
  if (format === SIG_PLAIN) {
    if (b.length !== proofEnd) return "sig length does not match its proof";
  } else {
    if (b.length < proofEnd + 2) return "sig too short for its certificate";
    const len = b[proofEnd] << 8 | b[proofEnd + 1];
    if (len === 0 || len > MAX_CERT_BYTES || b.length !== proofEnd + 2 + len) {
      return "sig certificate length is wrong";
    }
    cert = b.subarray(proofEnd + 2);
  }
  return {
    publicKey: b.subarray(1, 1 + PUBLIC_KEY_BYTES),
    signature: b.subarray(1 + PUBLIC_KEY_BYTES, at),
    n,
    index,
    proof: b.subarray(HEAD, proofEnd),
    cert,
  };
}

/** The root a leaf hash and its proof lead to (as {@link signRecords} built the tree). */
export function rootOf(
  kernels: Kernels,
  leaf: Uint8Array,
  n: number,
  index: number,
  proof: Uint8Array,
): Uint8Array {
  let h = leaf, k = 0;
  for (let width = n, i = index; width > 1; width = (width + 1) >> 1, i >>= 1) {
    const sibling = i ^ 1;
    if (sibling >= width) continue; // the last node of an odd level goes up as it is
    const s = proof.subarray(32 * k, 32 * k + 32);
    k++;
    h = (i & 1) === 0 ? inner(kernels, h, s) : inner(kernels, s, h);
  }
  return h === leaf ? leaf.slice() : h;
}
