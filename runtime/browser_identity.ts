/**
 * The identity of a browser database: what `<dir>/identity.json`
 * (storage/identity_file.ts) is on a server, kept in IndexedDB
 * (`lattice-identities`, one record per database name), so a page's OPFS
 * database writes under the same key after a reload.
 *
 * Where WebCrypto has Ed25519 (Chromium ≥ 137, Firefox, Safari 17) the record
 * holds a non-extractable `CryptoKey`: the page's scripts can sign with it but
 * no script can read the secret out (so it cannot be exported). libp2p needs
 * the raw key of a peer id, so the record also holds a second Ed25519 key, a
 * transport key for the peer id alone ({@link TransportKey}; it signs no op):
 * the page keeps its peer id across reloads, and the pages that reached it
 * through a relay can reach it again. Elsewhere the record holds the 32-byte
 * seed, signs with `@noble/curves` (core/trust/identity.ts), and the identity
 * is the peer id, as on a server. IndexedDB is the origin's, like OPFS: no
 * passphrase applies.
 *
 * @module
 */
import {
  actorOf,
  createIdentity,
  type Identity,
  identitySecret,
  importIdentity,
  toBase64Url,
  toHex,
} from "../core/trust/identity.ts";

const DB_NAME = "lattice-identities", STORE = "keys";

/**
 * The libp2p key of an identity whose own secret cannot be read (a
 * non-extractable WebCrypto key): its seed and public key
 * (net/peer_key.ts makes the peer's key of them).
 */
export interface TransportKey {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * One stored identity: the public key, and a non-extractable key with the
 * transport key's seed and public key, or (without WebCrypto Ed25519) the seed.
 */
interface KeyRecord {
  readonly publicKey: Uint8Array;
  readonly key?: CryptoKey;
  readonly seed?: Uint8Array;
  readonly transportSeed?: Uint8Array;
  readonly transportPublicKey?: Uint8Array;
}

/** An identity whose secret is a non-extractable WebCrypto key, with its {@link TransportKey}. */
class StoredKeyIdentity implements Identity {
  readonly id: string;
  readonly actor: string;
  readonly #key: CryptoKey;
  readonly #transport: TransportKey;
  constructor(readonly publicKey: Uint8Array, key: CryptoKey, transport: TransportKey) {
    this.id = toHex(publicKey);
    this.actor = actorOf(publicKey);
    this.#key = key;
    this.#transport = transport;
  }
  /** The key of this replica's peer id (a copy of the seed each time). */
  get transportKey(): TransportKey {
    return { seed: this.#transport.seed.slice(), publicKey: this.#transport.publicKey.slice() };
  }
  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.sign("Ed25519", this.#key, message as Uint8Array<ArrayBuffer>));
  }
}

// The part of IndexedDB used here (Deno's type library has none of it).
interface IdbRequest<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbStore {
  get(key: string): IdbRequest<unknown>;
  add(value: unknown, key: string): IdbRequest<unknown>;
  put(value: unknown, key: string): IdbRequest<unknown>;
  delete(key: string): IdbRequest<unknown>;
}
interface IdbDatabase {
  transaction(store: string, mode?: "readonly" | "readwrite"): { objectStore(name: string): IdbStore };
  createObjectStore(name: string): unknown;
  close(): void;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
}
interface IdbFactory {
  open(name: string, version: number): IdbOpenRequest;
}

function request<T>(r: IdbRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function openDb(): Promise<IdbDatabase> {
  const idb = (globalThis as { indexedDB?: IdbFactory }).indexedDB;
  if (!idb) {
    return Promise.reject(new RangeError("a browser identity needs IndexedDB, which this runtime lacks"));
  }
  const r = idb.open(DB_NAME, 1);
  r.onupgradeneeded = () => r.result.createObjectStore(STORE);
  return request(r);
}

/** A new record: a non-extractable Ed25519 key where WebCrypto has one, else a seed. */
async function newRecord(): Promise<KeyRecord> {
  try {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    return { publicKey, key: pair.privateKey, ...await newTransportKey() };
  } catch {
    const identity = await createIdentity();
    return { publicKey: identity.publicKey, seed: identitySecret(identity) };
  }
}

/** A transport key's fields of a record. */
async function newTransportKey(): Promise<Pick<KeyRecord, "transportSeed" | "transportPublicKey">> {
  const t = await createIdentity();
  return { transportSeed: identitySecret(t), transportPublicKey: t.publicKey };
}

async function fromRecord(r: KeyRecord): Promise<Identity> {
  if (r.key) {
    const transport = {
      seed: new Uint8Array(r.transportSeed!),
      publicKey: new Uint8Array(r.transportPublicKey!),
    };
    return new StoredKeyIdentity(new Uint8Array(r.publicKey), r.key, transport);
  }
  return await importIdentity({
    type: "lattice-identity",
    version: 1,
    publicKey: toBase64Url(r.publicKey),
    secretKey: toBase64Url(r.seed!),
  });
}

/**
 * The identity of browser database `name`, made and stored on its first
 * open. Of two tabs making it at once, both end with the first one stored.
 */
export async function loadOrCreateBrowserIdentity(name: string): Promise<Identity> {
  const db = await openDb();
  try {
    const found = await request(db.transaction(STORE).objectStore(STORE).get(name)) as KeyRecord | undefined;
    if (found?.key !== undefined && found.transportSeed === undefined) {
      // Stored before records held a transport key: given one now, kept from here on.
      const upgraded = { ...found, ...await newTransportKey() };
      await request(db.transaction(STORE, "readwrite").objectStore(STORE).put(upgraded, name));
      return await fromRecord(upgraded);
    }
    if (found) return await fromRecord(found);
    const fresh = await newRecord();
    try {
      // add, not put: a record another tab stored meanwhile is kept.
      await request(db.transaction(STORE, "readwrite").objectStore(STORE).add(fresh, name));
      return await fromRecord(fresh);
    } catch (e) {
      if ((e as Error)?.name !== "ConstraintError") throw e;
      return await fromRecord(await request(db.transaction(STORE).objectStore(STORE).get(name)) as KeyRecord);
    }
  } finally {
    db.close();
  }
}

/** Forgets the identity of browser database `name` (its next open makes a new one). */
export async function deleteBrowserIdentity(name: string): Promise<void> {
  const db = await openDb();
  try {
    await request(db.transaction(STORE, "readwrite").objectStore(STORE).delete(name));
  } finally {
    db.close();
  }
}
