/**
 * Private values: encrypted by the writer with AES-256-GCM before they leave
 * it; replicas store and sync the ciphertext and cannot read it.
 *
 * A **key** belongs to an owner (an identity) and has a name and versions.
 * Each version is a random 256-bit data key, shared with each reader by
 * wrapping it under a key-encryption key both can compute alone: X25519
 * between the owner's and the reader's keys (their Ed25519 keys in
 * Montgomery form), through HKDF-SHA256 salted with `<owner>/<name>/<version>`.
 * The wrapped keys live in the owner's protected soul
 * `~<owner>/~keys/<name>` (field `v`: the current version; field
 * `<version>.<reader id>`: that reader's wrapped key), so they replicate
 * like any signed write and only the owner can change them. Rotation is a
 * new version shared with the readers that remain: later writes use it, and
 * a removed reader, who never got it, cannot read them.
 *
 * A sealed value (a bin) is the envelope
 * `"LPV" 1 ‖ owner key (32) ‖ u8 name length ‖ name ‖ u32 version ‖ nonce (12) ‖ ciphertext`,
 * the plaintext being the value's stored encoding and the additional data
 * binding it to its soul and field (moved elsewhere, it fails to decrypt).
 * What stays visible: souls, field names, states, actors, sizes, links are
 * not hidden either when a private value is a link (it is encrypted like any
 * value, but the soul and field that hold it are not).
 *
 * @module
 */
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { decodeValue, encodeValue } from "../value_encoding.ts";
import type { Value } from "../value.ts";
import type { World } from "../world.ts";
import { fromHex, type Identity, identitySecret, toHex } from "./identity.ts";

const MAGIC = [0x4c, 0x50, 0x56, 1]; // "LPV" 1
const utf8 = new TextEncoder(), text = new TextDecoder("utf-8", { fatal: true });
const WRAP_INFO = utf8.encode("lattice/key-wrap/v1");

/** Which key sealed a value: its owner (hex key), name and version. */
export interface KeyRef {
  readonly owner: string;
  readonly name: string;
  readonly version: number;
}

/** The soul holding the wrapped versions of `owner`'s key `name`. */
export function keyringSoul(owner: string, name: string): string {
  return `~${owner}/~keys/${name}`;
}

/** Checks a key name: 1–64 characters of letters, digits, `-`, `_`, `.`. */
export function checkKeyName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
    throw new TypeError("a key name is 1 to 64 letters, digits, '-', '_' or '.'");
  }
}

function aad(soul: string, field: string, header: Uint8Array): Uint8Array {
  const s = utf8.encode(`${soul}\0${field}\0`);
  const out = new Uint8Array(s.length + header.length);
  out.set(s);
  out.set(header, s.length);
  return out;
}

function header(ref: KeyRef): Uint8Array {
  const name = utf8.encode(ref.name);
  const h = new Uint8Array(4 + 32 + 1 + name.length + 4);
  h.set(MAGIC);
  h.set(fromHex(ref.owner)!, 4);
  h[36] = name.length;
  h.set(name, 37);
  new DataView(h.buffer).setUint32(37 + name.length, ref.version);
  return h;
}

/** Whether `v` looks like a sealed value (a bin starting with the envelope's magic). */
export function isSealed(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length > 4 && v[0] === MAGIC[0] && v[1] === MAGIC[1] &&
    v[2] === MAGIC[2] && v[3] === MAGIC[3];
}

/** The parts of a sealed value, or undefined when it is malformed. */
export function parseSealed(
  v: Uint8Array,
): { ref: KeyRef; header: Uint8Array; nonce: Uint8Array; ct: Uint8Array } | undefined {
  if (!isSealed(v) || v.length < 37) return undefined;
  const n = v[36];
  const end = 37 + n + 4;
  if (n === 0 || v.length < end + 12 + 16) return undefined;
  let name: string;
  try {
    name = text.decode(v.subarray(37, 37 + n));
  } catch {
    return undefined;
  }
  const version = new DataView(v.buffer, v.byteOffset + 37 + n, 4).getUint32(0);
  return {
    ref: { owner: toHex(v.subarray(4, 36)), name, version },
    header: v.subarray(0, end),
    nonce: v.subarray(end, end + 12),
    ct: v.subarray(end + 12),
  };
}

function aesKey(raw: Uint8Array, use: KeyUsage[]): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, { name: "AES-GCM" }, false, use);
}

/** `value` sealed with data key `key` (version `ref`) for field `field` of `soul`. */
export async function sealValue(
  key: CryptoKey,
  ref: KeyRef,
  soul: string,
  field: string,
  value: Value,
  world: World,
): Promise<Uint8Array> {
  const h = header(ref), nonce = world.randomBytes(new Uint8Array(12));
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      {
        name: "AES-GCM",
        iv: nonce as Uint8Array<ArrayBuffer>,
        additionalData: aad(soul, field, h) as Uint8Array<ArrayBuffer>,
      },
      key,
      encodeValue(value) as Uint8Array<ArrayBuffer>,
    ),
  );
  const out = new Uint8Array(h.length + 12 + ct.length);
  out.set(h);
  out.set(nonce, h.length);
  out.set(ct, h.length + 12);
  return out;
}

/** The value sealed in `sealed` for `field` of `soul`; throws when `key` does not open it there. */
export async function openValue(
  key: CryptoKey,
  sealed: Uint8Array,
  soul: string,
  field: string,
): Promise<Value> {
  const p = parseSealed(sealed);
  if (p === undefined) throw new TypeError("not a sealed value");
  const plain = await crypto.subtle.decrypt(
    {
      name: "AES-GCM",
      iv: p.nonce as Uint8Array<ArrayBuffer>,
      additionalData: aad(soul, field, p.header) as Uint8Array<ArrayBuffer>,
    },
    key,
    p.ct as Uint8Array<ArrayBuffer>,
  );
  return decodeValue(new Uint8Array(plain));
}

/** The key-encryption key of `ref` between `me` and `other` (hex Ed25519 key), either side. */
async function wrappingKey(me: Identity, other: string, ref: KeyRef, use: KeyUsage[]): Promise<CryptoKey> {
  const pub = fromHex(other);
  if (pub === undefined || pub.length !== 32) {
    throw new TypeError(`not a public key id: ${other.slice(0, 70)}`);
  }
  const shared = x25519.getSharedSecret(
    ed25519.utils.toMontgomerySecret(identitySecret(me)),
    ed25519.utils.toMontgomery(pub),
  );
  const kek = hkdf(sha256, shared, utf8.encode(`${ref.owner}/${ref.name}/${ref.version}`), WRAP_INFO, 32);
  return aesKey(kek, use);
}

/** Data key `raw` (32 bytes) of `ref`, wrapped by its owner `owner` for `reader` (hex key): nonce ‖ ciphertext. */
export async function wrapKey(
  owner: Identity,
  reader: string,
  raw: Uint8Array,
  ref: KeyRef,
  world: World,
): Promise<Uint8Array> {
  const kek = await wrappingKey(owner, reader, ref, ["encrypt"]);
  const nonce = world.randomBytes(new Uint8Array(12));
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      {
        name: "AES-GCM",
        iv: nonce as Uint8Array<ArrayBuffer>,
        additionalData: fromHex(reader)! as Uint8Array<ArrayBuffer>,
      },
      kek,
      raw as Uint8Array<ArrayBuffer>,
    ),
  );
  const out = new Uint8Array(12 + ct.length);
  out.set(nonce);
  out.set(ct, 12);
  return out;
}

/** The data key of `ref` from `wrapped` (made by {@link wrapKey} for `me`); throws when it is not for `me`. */
export async function unwrapKey(me: Identity, wrapped: Uint8Array, ref: KeyRef): Promise<CryptoKey> {
  if (!(wrapped instanceof Uint8Array) || wrapped.length < 12 + 16) throw new TypeError("not a wrapped key");
  const kek = await wrappingKey(me, ref.owner, ref, ["decrypt"]);
  const raw = new Uint8Array(
    await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: wrapped.subarray(0, 12) as Uint8Array<ArrayBuffer>,
        additionalData: me.publicKey as Uint8Array<ArrayBuffer>,
      },
      kek,
      wrapped.subarray(12) as Uint8Array<ArrayBuffer>,
    ),
  );
  return aesKey(raw, ["encrypt", "decrypt"]);
}

/** A new random data key (32 bytes) and its WebCrypto key. */
export async function newDataKey(world: World): Promise<{ raw: Uint8Array; key: CryptoKey }> {
  const raw = world.randomBytes(new Uint8Array(32));
  return { raw, key: await aesKey(raw, ["encrypt", "decrypt"]) };
}
