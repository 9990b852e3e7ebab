/**
 * Identities: Ed25519 key pairs that sign ops, and the actor ids bound to
 * them.
 *
 * A key pair signs with WebCrypto where the runtime has Ed25519 (Deno, Bun,
 * Chromium ≥ 137: ~20–50 µs a signature) and with `@noble/curves` otherwise
 * (pure JS, ~10× slower); both give the same signatures (Ed25519 is
 * deterministic). The actor id of a key is derived from its public key
 * ({@link actorOf}) and has its top bit set; actor ids of replicas without a
 * key have it clear ({@link isKeyActor}). A peer therefore refuses an
 * unsigned op that claims a key's actor id: no one writes under another
 * node's name.
 *
 * The exported form ({@link ExportedIdentity}) carries the 32-byte secret
 * seed; whoever holds it is the identity. Files keep it with mode 0600,
 * optionally encrypted (runtime/identity_file.ts).
 *
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex64 } from "../op.ts";
import { systemWorld, type World } from "../world.ts";

/** Bytes of an Ed25519 public key, secret seed and signature. */
export const PUBLIC_KEY_BYTES = 32, SECRET_BYTES = 32, SIGNATURE_BYTES = 64;

/**
 * A signer: a public key, the actor id it writes as, and a signature over any
 * message. {@link createIdentity} and {@link importIdentity} make one.
 *
 * @example
 * ```ts
 * import { createIdentity, verifySignature } from "../../mod.ts";
 * const me = await createIdentity();
 * const msg = new TextEncoder().encode("hello");
 * console.log(await verifySignature(me.publicKey, await me.sign(msg), msg)); // true
 * ```
 */
export interface Identity {
  /** The Ed25519 public key (32 bytes). */
  readonly publicKey: Uint8Array;
  /** The public key in lowercase hex (64 digits): the name of its protected souls `~<hex>/…`. */
  readonly id: string;
  /** The actor id this identity writes as ({@link actorOf} its public key). */
  readonly actor: string;
  /** An Ed25519 signature (64 bytes) of `message`. */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/**
 * An identity as JSON, for files, `open({ identity })` and `lattice identity
 * export|import`. Whoever holds `secretKey` is this identity.
 *
 * @example
 * ```ts
 * import { createIdentity, exportIdentity, importIdentity } from "../../mod.ts";
 * const me = await createIdentity();
 * const again = await importIdentity(exportIdentity(me));
 * console.log(again.id === me.id, again.actor === me.actor); // true true
 * ```
 */
export interface ExportedIdentity {
  readonly type: "lattice-identity";
  readonly version: 1;
  /** The public key, base64url (no padding). */
  readonly publicKey: string;
  /** The 32-byte secret seed, base64url (no padding). */
  readonly secretKey: string;
}

/** A key identity: an {@link Identity} that can be exported. */
class KeyIdentity implements Identity {
  readonly id: string;
  readonly actor: string;
  readonly #seed: Uint8Array;
  readonly #key: CryptoKey | undefined;

  constructor(readonly publicKey: Uint8Array, seed: Uint8Array, key: CryptoKey | undefined) {
    this.id = toHex(publicKey);
    this.actor = actorOf(publicKey);
    this.#seed = seed;
    this.#key = key;
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    if (this.#key) {
      return new Uint8Array(
        await crypto.subtle.sign("Ed25519", this.#key, message as Uint8Array<ArrayBuffer>),
      );
    }
    return ed25519.sign(message, this.#seed);
  }

  /** The secret seed (32 bytes): for exporting and for the libp2p key of the same identity. */
  secret(): Uint8Array {
    return this.#seed.slice();
  }
}

/** Identities made here, so {@link exportIdentity} can reach the seed of exactly these. */
const keyIdentities = new WeakSet<object>();

/** Whether WebCrypto does Ed25519 here (checked once). */
let webEd25519: Promise<boolean> | undefined;

function hasWebEd25519(): Promise<boolean> {
  webEd25519 ??= (async () => {
    try {
      const subtle = globalThis.crypto?.subtle;
      if (!subtle) return false;
      const k = await subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]) as CryptoKeyPair;
      const msg = new Uint8Array([1]);
      return await subtle.verify(
        "Ed25519",
        k.publicKey,
        await subtle.sign("Ed25519", k.privateKey, msg),
        msg,
      );
    } catch {
      return false;
    }
  })();
  return webEd25519;
}

/** The signing backend in use: `webcrypto` where the runtime has Ed25519, else `noble`. */
export async function signingBackend(): Promise<"webcrypto" | "noble"> {
  return (await hasWebEd25519()) ? "webcrypto" : "noble";
}

async function fromSeed(seed: Uint8Array): Promise<KeyIdentity> {
  if (!(seed instanceof Uint8Array) || seed.length !== SECRET_BYTES) {
    throw new TypeError(`an identity's secret key is ${SECRET_BYTES} bytes`);
  }
  const publicKey = ed25519.getPublicKey(seed);
  let key: CryptoKey | undefined;
  if (await hasWebEd25519()) {
    key = await crypto.subtle.importKey(
      "jwk",
      { kty: "OKP", crv: "Ed25519", d: toBase64Url(seed), x: toBase64Url(publicKey) },
      { name: "Ed25519" },
      false,
      ["sign"],
    );
  }
  const identity = new KeyIdentity(publicKey, seed.slice(), key);
  keyIdentities.add(identity);
  return identity;
}

/**
 * A new random identity (its secret from `world`'s randomness: a simulator
 * passes its own; programs leave it out).
 *
 * @example
 * ```ts
 * import { createIdentity, isKeyActor } from "../../mod.ts";
 * const me = await createIdentity();
 * console.log(me.id.length, isKeyActor(me.actor)); // 64 true
 * ```
 */
export function createIdentity(world: World = systemWorld): Promise<Identity> {
  return fromSeed(world.randomBytes(new Uint8Array(SECRET_BYTES)));
}

/**
 * The identity of an {@link ExportedIdentity} (or its JSON text). Throws a
 * `TypeError` for anything else, and when the public key does not belong to
 * the secret key.
 *
 * @example
 * ```ts
 * import { createIdentity, exportIdentity, importIdentity } from "../../mod.ts";
 * const text = JSON.stringify(exportIdentity(await createIdentity()));
 * console.log((await importIdentity(text)).actor.length); // 16
 * ```
 */
export async function importIdentity(exported: ExportedIdentity | string): Promise<Identity> {
  let e: unknown = exported;
  if (typeof e === "string") {
    try {
      e = JSON.parse(e);
    } catch {
      throw new TypeError('an exported identity is JSON: {type: "lattice-identity", version: 1, ...}');
    }
  }
  const o = e as Record<string, unknown>;
  if (typeof o !== "object" || o === null || o.type !== "lattice-identity") {
    throw new TypeError('not an exported identity (its type is not "lattice-identity")');
  }
  if (o.version !== 1) {
    throw new TypeError(`unsupported identity version ${String(o.version)} (this build reads 1)`);
  }
  if (typeof o.secretKey !== "string" || typeof o.publicKey !== "string") {
    throw new TypeError("an exported identity has publicKey and secretKey as base64url strings");
  }
  const identity = await fromSeed(fromBase64Url(o.secretKey, "secretKey"));
  if (toBase64Url(identity.publicKey) !== o.publicKey) {
    throw new TypeError("the identity's publicKey does not belong to its secretKey");
  }
  return identity;
}

/**
 * The exportable form of an identity made by {@link createIdentity} or
 * {@link importIdentity} (it holds the secret: keep it private).
 *
 * @example
 * ```ts
 * import { createIdentity, exportIdentity } from "../../mod.ts";
 * console.log(exportIdentity(await createIdentity()).type); // lattice-identity
 * ```
 */
export function exportIdentity(identity: Identity): ExportedIdentity {
  if (!keyIdentities.has(identity)) {
    throw new TypeError("this identity cannot be exported (its key is not here)");
  }
  const k = identity as KeyIdentity;
  return {
    type: "lattice-identity",
    version: 1,
    publicKey: toBase64Url(k.publicKey),
    secretKey: toBase64Url(k.secret()),
  };
}

/** The 32-byte secret seed of an identity made here (for the libp2p key of the same identity). */
export function identitySecret(identity: Identity): Uint8Array {
  if (!keyIdentities.has(identity)) throw new TypeError("this identity's secret key is not here");
  return (identity as KeyIdentity).secret();
}

/** Whether `x` is an {@link Identity} (duck-typed: a 32-byte public key, an actor and `sign`). */
export function isIdentity(x: unknown): x is Identity {
  const o = x as Identity;
  return typeof o === "object" && o !== null && o.publicKey instanceof Uint8Array &&
    o.publicKey.length === PUBLIC_KEY_BYTES && typeof o.sign === "function" && typeof o.actor === "string";
}

const ACTOR_DOMAIN = new TextEncoder().encode("lattice/actor/v1\0");

/**
 * The actor id of a public key: the first 8 bytes of SHA-256 of a domain tag
 * and the key, with the top bit set (16 hex digits).
 *
 * @example
 * ```ts
 * import { actorOf, createIdentity } from "../../mod.ts";
 * const me = await createIdentity();
 * console.log(actorOf(me.publicKey) === me.actor); // true
 * ```
 */
export function actorOf(publicKey: Uint8Array): string {
  const input = new Uint8Array(ACTOR_DOMAIN.length + publicKey.length);
  input.set(ACTOR_DOMAIN);
  input.set(publicKey, ACTOR_DOMAIN.length);
  const h = sha256(input);
  h[0] |= 0x80;
  return bytesToHex64(h);
}

/**
 * Whether an actor id is a key's (top bit set): ops under it must be signed
 * by that key. Actor ids of replicas without a key have the top bit clear.
 *
 * @example
 * ```ts
 * import { isKeyActor } from "../../mod.ts";
 * console.log(isKeyActor("00000000000000ff"), isKeyActor("80000000000000ff")); // false true
 * ```
 */
export function isKeyActor(actor: string): boolean {
  return actor.charCodeAt(0) >= 0x38; // '8'..'f'
}

/** WebCrypto public keys imported for verification, by hex id (bounded). */
const verifyKeys = new Map<string, Promise<CryptoKey>>();
const VERIFY_KEYS_MAX = 4096;

/**
 * Whether `signature` is `publicKey`'s Ed25519 signature of `message`
 * (WebCrypto where present, else `@noble/curves`). Never throws for bad
 * input: malformed keys and signatures are `false`.
 *
 * @example
 * ```ts
 * import { createIdentity, verifySignature } from "../../mod.ts";
 * const me = await createIdentity(), msg = new Uint8Array([1, 2, 3]);
 * const sig = await me.sign(msg);
 * console.log(await verifySignature(me.publicKey, sig, msg), await verifySignature(me.publicKey, sig, new Uint8Array(3))); // true false
 * ```
 */
export async function verifySignature(
  publicKey: Uint8Array,
  signature: Uint8Array,
  message: Uint8Array,
): Promise<boolean> {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  try {
    if (await hasWebEd25519()) {
      const id = toHex(publicKey);
      let key = verifyKeys.get(id);
      if (key === undefined) {
        if (verifyKeys.size >= VERIFY_KEYS_MAX) verifyKeys.clear();
        key = crypto.subtle.importKey(
          "raw",
          publicKey as Uint8Array<ArrayBuffer>,
          { name: "Ed25519" },
          false,
          [
            "verify",
          ],
        );
        verifyKeys.set(id, key);
      }
      return await crypto.subtle.verify(
        "Ed25519",
        await key,
        signature as Uint8Array<ArrayBuffer>,
        message as Uint8Array<ArrayBuffer>,
      );
    }
    return ed25519.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Bytes → lowercase hex. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX[b[i]];
  return s;
}

/** Lowercase hex of even length → bytes, or undefined when it is not that. */
export function fromHex(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) return undefined;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The 32 bytes of a key id (`what` names it in the TypeError thrown for anything else). */
export function keyIdBytes(id: unknown, what: string): Uint8Array {
  if (typeof id !== "string" || id.length !== 64 || !/^[0-9a-f]{64}$/.test(id)) {
    throw new TypeError(`${what} must be a public key id: 64 lowercase hex digits`);
  }
  return fromHex(id)!;
}

/** `a` then `b`, in a new array. */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Bytes → base64url without padding. */
export function toBase64Url(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** base64url (padding optional) → bytes; a `TypeError` naming `what` when it is not base64url. */
export function fromBase64Url(s: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s)) throw new TypeError(`${what} is not base64url`);
  const bare = s.replace(/=+$/, "");
  if (bare.length % 4 === 1) throw new TypeError(`${what} is not base64url`);
  const bin = atob(bare.replaceAll("-", "+").replaceAll("_", "/") + "===".slice((bare.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
