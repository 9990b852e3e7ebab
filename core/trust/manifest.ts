/**
 * Space manifests: the owner's signed statement of who may write a space.
 *
 * A manifest names its space, its owner (an Ed25519 key), the writers (a
 * list of keys, or anyone), the replication mode and factor, and a sequence
 * number. It is stored as the DHT record `/lattice/space/<hex
 * sha256(space)>` (net/dht_records.ts checks its signature before keeping
 * it) and a replica adopts a newer one (higher `seq`) of the owner it
 * already follows (core/db/trust.ts): a manifest of another key for the same
 * space is ignored, so no one takes a space over by publishing first or
 * with a larger number. In a space with a writers list, every op must be
 * signed by a listed writer or the owner.
 *
 * Encoding: `body ‖ signature (64)`, the owner signing
 * `"lattice/manifest/v1\0" ‖ body`; body = MessagePack
 * `[1, space, owner (bin 32), writers (nil = anyone, or [bin 32, …]), mode, replication, seq]`.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { decode, encode, type MsgValue } from "../msgpack.ts";
import {
  concatBytes,
  type Identity,
  keyIdBytes,
  SIGNATURE_BYTES,
  toHex,
  verifySignature,
} from "./identity.ts";

/** Most writers a manifest lists. */
export const MAX_WRITERS = 1024;
/** Largest manifest accepted (a list of 1,024 writers fits). */
export const MAX_MANIFEST_BYTES = 40 * 1024;

const utf8 = new TextEncoder();
const TAG = utf8.encode("lattice/manifest/v1\0");

/** What a manifest says. */
export interface ManifestFields {
  readonly space: string;
  /** Who may write: public key ids, or `"anyone"`. The owner always may. */
  readonly writers: readonly string[] | "anyone";
  /** Replication mode (default `full`). */
  readonly mode?: "full" | "sharded";
  /** Replication factor of a sharded space (default 3). */
  readonly replication?: number;
  /** Sequence number: a newer manifest has a higher one. */
  readonly seq: number;
}

/** A manifest whose signature held. */
export interface Manifest extends Required<ManifestFields> {
  /** The owner's public key id (hex). */
  readonly owner: string;
  readonly bytes: Uint8Array;
}

/** A manifest of `fields`, signed by `owner`. Throws a `TypeError`/`RangeError` for bad fields. */
export async function createManifest(owner: Identity, fields: ManifestFields): Promise<Uint8Array> {
  const { space, writers, seq } = fields;
  const mode = fields.mode ?? "full", replication = fields.replication ?? 3;
  if (typeof space !== "string" || space === "") throw new TypeError("a manifest names its space");
  if (writers !== "anyone" && (!Array.isArray(writers) || writers.length > MAX_WRITERS)) {
    throw new RangeError(`writers is "anyone" or a list of at most ${MAX_WRITERS} key ids`);
  }
  if (mode !== "full" && mode !== "sharded") throw new RangeError('mode is "full" or "sharded"');
  if (!Number.isSafeInteger(replication) || replication < 1 || replication > 64) {
    throw new RangeError("replication is an integer from 1 to 64");
  }
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError("seq is a non-negative integer");
  const body = encode([
    1,
    space,
    owner.publicKey,
    writers === "anyone" ? null : writers.map((w) => keyIdBytes(w, "a writer")),
    mode,
    replication,
    seq,
  ] as MsgValue);
  const signature = await owner.sign(concatBytes(TAG, body));
  const out = concatBytes(body, signature);
  if (out.length > MAX_MANIFEST_BYTES) throw new RangeError("the manifest is too large");
  return out;
}

/** The fields of a manifest, its signature not checked; undefined when malformed. */
export function decodeManifest(bytes: Uint8Array): Manifest | undefined {
  if (
    !(bytes instanceof Uint8Array) || bytes.length <= SIGNATURE_BYTES || bytes.length > MAX_MANIFEST_BYTES
  ) {
    return undefined;
  }
  let t: MsgValue;
  try {
    t = decode(bytes.subarray(0, bytes.length - SIGNATURE_BYTES));
  } catch {
    return undefined;
  }
  if (!Array.isArray(t) || t.length !== 7 || t[0] !== 1) return undefined;
  const [, space, owner, writers, mode, replication, seq] = t;
  if (typeof space !== "string" || !(owner instanceof Uint8Array) || owner.length !== 32) return undefined;
  if (mode !== "full" && mode !== "sharded") return undefined;
  if (!Number.isSafeInteger(replication) || !Number.isSafeInteger(seq) || (seq as number) < 0) {
    return undefined;
  }
  let list: string[] | "anyone" = "anyone";
  if (writers !== null) {
    if (!Array.isArray(writers) || writers.length > MAX_WRITERS) return undefined;
    list = [];
    for (const w of writers) {
      if (!(w instanceof Uint8Array) || w.length !== 32) return undefined;
      list.push(toHex(w));
    }
  }
  return {
    space,
    owner: toHex(owner),
    writers: list,
    mode,
    replication: replication as number,
    seq: seq as number,
    bytes,
  };
}

/**
 * The manifest in `bytes` when it is well formed and its owner's signature
 * holds (and, given `space`, it is that space's), else undefined.
 */
export async function readManifest(bytes: Uint8Array, space?: string): Promise<Manifest | undefined> {
  const m = decodeManifest(bytes);
  if (m === undefined || (space !== undefined && m.space !== space)) return undefined;
  const body = bytes.subarray(0, bytes.length - SIGNATURE_BYTES);
  const ok = await verifySignature(
    keyIdBytes(m.owner, "the owner"),
    bytes.subarray(bytes.length - SIGNATURE_BYTES),
    concatBytes(TAG, body),
  );
  return ok ? m : undefined;
}

/** The DHT key of `space`'s manifest: `/lattice/space/<hex sha256(space)>`. */
export function manifestKey(space: string): Uint8Array {
  return utf8.encode(`/lattice/space/${toHex(sha256(utf8.encode(space)))}`);
}

/** Whether `key` (hex) may write in a space under manifest `m` (`undefined`: no manifest, anyone). */
export function mayWrite(m: Manifest | undefined, key: string): boolean {
  return m === undefined || m.writers === "anyone" || key === m.owner || m.writers.includes(key);
}
