/**
 * Private data of one database (`db.trust.shareKey`, `putPrivate`,
 * `getPrivate`; the scheme is core/trust/private.ts): keys this replica owns
 * are shared through its protected keyring souls, values are sealed before
 * `put` and opened after `get` with the data keys this replica can unwrap.
 *
 * @module
 */
import { isLink, type NodeData, type Value } from "../value.ts";
import type { World } from "../world.ts";
import type { Identity } from "../trust/identity.ts";
import {
  checkKeyName,
  isSealed,
  type KeyRef,
  keyringSoul,
  newDataKey,
  openValue,
  parseSealed,
  sealValue,
  unwrapKey,
  wrapKey,
} from "../trust/private.ts";
import type { WriteResult } from "./commit_queue.ts";
import { TrustError } from "./trust.ts";

/** What private data needs of its database. */
export interface PrivateHost {
  identity(): Identity | undefined;
  put(soul: string, data: Record<string, unknown>): Promise<WriteResult>;
  get(soul: string): Promise<NodeData | undefined>;
  readonly world: World;
}

/** Keys and sealing for one database. */
export class PrivateData {
  readonly #host: PrivateHost;
  /** Data keys opened, by `owner/name/version`. */
  readonly #keys = new Map<string, Promise<CryptoKey>>();

  constructor(host: PrivateHost) {
    this.#host = host;
  }

  #me(what: string): Identity {
    const me = this.#host.identity();
    if (me === undefined) throw new TrustError(`${what} needs an identity: open with one`);
    return me;
  }

  /**
   * Makes a new version of this replica's key `name`, shared with `readers`
   * (public key ids) and this replica; later `putPrivate` calls with `name`
   * use it. Calling it again with fewer readers rotates the key: the readers
   * left out cannot read what is written after. Resolves with the version.
   */
  async shareKey(name: string, readers: readonly string[]): Promise<number> {
    checkKeyName(name);
    const me = this.#me("shareKey");
    if (!Array.isArray(readers) || readers.some((r) => typeof r !== "string" || !/^[0-9a-f]{64}$/.test(r))) {
      throw new TypeError("readers are public key ids: 64 lowercase hex digits each");
    }
    const soul = keyringSoul(me.id, name);
    const ring = await this.#host.get(soul);
    const version = (typeof ring?.v === "number" ? ring.v : 0) + 1;
    const ref: KeyRef = { owner: me.id, name, version };
    const { raw, key } = await newDataKey(this.#host.world);
    const fields: Record<string, Value> = { v: version };
    for (const r of new Set([me.id, ...readers])) {
      fields[`${version}.${r}`] = await wrapKey(me, r, raw, ref, this.#host.world);
    }
    await this.#host.put(soul, fields);
    this.#keys.set(`${me.id}/${name}/${version}`, Promise.resolve(key));
    return version;
  }

  /** Seals every field of `data` with the current version of this replica's key `name`, then puts it. */
  async putPrivate(soul: string, data: Record<string, Value>, name: string): Promise<WriteResult> {
    checkKeyName(name);
    const me = this.#me("putPrivate");
    if (typeof data !== "object" || data === null) {
      throw new TypeError("putPrivate takes an object of fields");
    }
    const ring = await this.#host.get(keyringSoul(me.id, name));
    if (typeof ring?.v !== "number") {
      throw new TrustError(`no key ${name} yet: db.trust.shareKey("${name}", readers)`);
    }
    const ref: KeyRef = { owner: me.id, name, version: ring.v };
    const key = await this.#key(me, ref);
    const sealed: Record<string, Uint8Array> = {};
    for (const [field, value] of Object.entries(data)) {
      if (typeof value === "object" && value !== null && !(value instanceof Uint8Array) && !isLink(value)) {
        throw new TypeError(`putPrivate seals flat values: field ${field} holds an object`);
      }
      sealed[field] = await sealValue(key, ref, soul, field, value, this.#host.world);
    }
    return this.#host.put(soul, sealed);
  }

  /**
   * Node `soul` with its sealed fields opened; fields that were not sealed
   * come as they are. Rejects with a `TrustError` when a sealed field's key
   * was not shared with this replica.
   */
  async getPrivate(soul: string): Promise<NodeData | undefined> {
    const node = await this.#host.get(soul);
    if (node === undefined) return undefined;
    const me = this.#host.identity();
    const out: Record<string, Value> = {};
    for (const [field, value] of Object.entries(node)) {
      if (!isSealed(value)) {
        out[field] = value;
        continue;
      }
      const p = parseSealed(value);
      if (p === undefined) {
        throw new TrustError(`field ${field} of ${soul} is not a well-formed sealed value`);
      }
      if (me === undefined) throw new TrustError("reading private data needs an identity: open with one");
      let key: CryptoKey;
      try {
        key = await this.#key(me, p.ref);
      } catch (e) {
        throw e instanceof TrustError
          ? e
          : new TrustError(`cannot open the key of ${field}: ${(e as Error).message}`);
      }
      try {
        out[field] = await openValue(key, value, soul, field);
      } catch {
        throw new TrustError(`field ${field} of ${soul} does not open with its key (damaged or moved)`);
      }
    }
    return out as NodeData;
  }

  /** The data key of `ref` for `me`: unwrapped from the owner's keyring (kept once opened). */
  #key(me: Identity, ref: KeyRef): Promise<CryptoKey> {
    const id = `${ref.owner}/${ref.name}/${ref.version}`;
    let key = this.#keys.get(id);
    if (key === undefined) {
      key = (async () => {
        const ring = await this.#host.get(keyringSoul(ref.owner, ref.name));
        const wrapped = ring?.[`${ref.version}.${me.id}`];
        if (!(wrapped instanceof Uint8Array)) {
          throw new TrustError(
            `key ${ref.name} version ${ref.version} of ${
              ref.owner.slice(0, 12)
            }… was not shared with this replica`,
          );
        }
        return await unwrapKey(me, wrapped, ref);
      })();
      this.#keys.set(id, key);
      key.catch(() => this.#keys.delete(id)); // a key shared later is looked up again
    }
    return key;
  }
}
