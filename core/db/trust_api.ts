/**
 * `db.trust`: the identity a database writes with, and the certificates
 * that let other keys write under its protected souls (or let it write
 * under theirs). The rules themselves are in core/trust/ (signing,
 * verification, certificates) and core/db/trust.ts (where a database
 * applies them).
 *
 * @module
 */
import { type Certificate, createCertificate, decodeCertificate, type Grant } from "../trust/certificate.ts";
import type { Identity } from "../trust/identity.ts";
import { revokedSoul } from "../trust/verify.ts";
import { createManifest, type Manifest, type ManifestFields } from "../trust/manifest.ts";
import type { WriteResult } from "./commit_queue.ts";
import { type Trust, TrustError } from "./trust.ts";
import { PrivateData } from "./private_data.ts";
import type { NodeData, Value } from "../value.ts";
import type { World } from "../world.ts";

/** Reads the {@link Trust} behind a `db.trust` (set by the class's static block). */
let trustOfApi: (api: TrustApi) => Trust;

/**
 * The trust check of a database, for the network, which checks gossip
 * before relaying it. Not exported by mod.ts.
 */
export function trustOf(db: { readonly trust: TrustApi }): Trust {
  return trustOfApi(db.trust);
}

/**
 * Identity and certificates of one database (`db.trust`).
 *
 * @example
 * ```ts
 * import { createIdentity, open } from "../../mod.ts";
 * const alice = await open({ storage: "memory", identity: await createIdentity() });
 * const bob = await open({ storage: "memory", identity: await createIdentity() });
 * const board = `~${alice.trust.identity!.id}/board`;
 * const cert = await alice.trust.certify({
 *   grantees: [bob.trust.identity!.id], prefix: board, expires: Date.now() + 3_600_000,
 * });
 * await bob.trust.useCertificate(cert);
 * await bob.put(`${board}/post1`, { text: "hi" }); // signed by bob, carrying alice's certificate
 * console.log((await alice.applyOps((await bob.exportOps()).ops)).applied); // 1
 * await alice.close();
 * await bob.close();
 * ```
 */
export class TrustApi {
  static {
    trustOfApi = (api) => api.#trust;
  }

  readonly #trust: Trust;
  readonly #put: (soul: string, data: Record<string, unknown>) => Promise<WriteResult>;
  readonly #private: PrivateData;

  constructor(
    trust: Trust,
    db: {
      put(soul: string, data: Record<string, unknown>): Promise<WriteResult>;
      get(soul: string): Promise<NodeData | undefined>;
    },
    world: World,
  ) {
    this.#trust = trust;
    this.#put = (soul, data) => db.put(soul, data);
    this.#private = new PrivateData({
      identity: () => trust.identity,
      put: this.#put,
      get: (soul) => db.get(soul),
      world,
    });
  }

  /** The key this database signs its writes with (`undefined`: unsigned writes, public souls only). */
  get identity(): Identity | undefined {
    return this.#trust.identity;
  }

  /**
   * A certificate, signed by this database's key, letting `grant.grantees`
   * write under `grant.prefix` (which lies under `~<this key>`), the fields
   * listed (default all) until `grant.expires` by each receiver's clock.
   * Hand its bytes to the grantees (`useCertificate`).
   */
  certify(grant: Grant): Promise<Uint8Array> {
    const id = this.#trust.identity;
    if (id === undefined) return Promise.reject(new TrustError("certify needs an identity: open with one"));
    try {
      return createCertificate(id, grant);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Holds a certificate to write with: a put into a protected soul of the
   * certificate's issuer then carries it. Rejects with a `TrustError` when
   * it is not a valid certificate for this database's key.
   */
  useCertificate(cert: Uint8Array): Promise<Certificate> {
    return this.#trust.useCertificate(cert);
  }

  /**
   * Revokes a certificate this database issued (its bytes or its id): writes
   * `true` to field `<id>` of `~<key>/~revoked`, which replicates; from then
   * on every replica that holds it refuses ops under that certificate.
   */
  revoke(cert: Uint8Array | string): Promise<WriteResult> {
    const id = this.#trust.identity;
    if (id === undefined) return Promise.reject(new TrustError("revoke needs an identity: open with one"));
    let certId: string;
    if (typeof cert === "string" && /^[0-9a-f]{64}$/.test(cert)) certId = cert;
    else if (cert instanceof Uint8Array) {
      const c = decodeCertificate(cert);
      if (c === undefined) return Promise.reject(new TypeError("not a certificate"));
      if (c.issuer !== id.id) return Promise.reject(new TrustError("only a certificate's issuer revokes it"));
      certId = c.id;
    } else {return Promise.reject(
        new TypeError("revoke takes a certificate's bytes or its id (64 hex digits)"),
      );}
    return this.#put(revokedSoul(id.id), { [certId]: true });
  }

  /**
   * Makes a new version of this replica's key `name` and shares it with
   * `readers` (public key ids) and this replica, through X25519: the wrapped
   * copies go to its protected soul `~<id>/~keys/<name>`, which replicates.
   * Later `putPrivate(…, name)` calls use it. Called again with fewer
   * readers it rotates the key: those left out cannot read later writes.
   * Resolves with the new version.
   */
  shareKey(name: string, readers: readonly string[]): Promise<number> {
    return this.#private.shareKey(name, readers);
  }

  /**
   * Puts `data` with every field sealed (AES-256-GCM) under the current
   * version of this replica's key `name`: replicas store and sync only the
   * ciphertext. Souls, field names, states and sizes stay visible.
   */
  putPrivate(soul: string, data: Record<string, Value>, name: string): Promise<WriteResult> {
    return this.#private.putPrivate(soul, data, name);
  }

  /**
   * `get` with sealed fields opened (plain fields as they are); rejects with
   * a `TrustError` when a field's key was not shared with this replica.
   */
  getPrivate(soul: string): Promise<NodeData | undefined> {
    return this.#private.getPrivate(soul);
  }

  /** The space's manifest in force (core/trust/manifest.ts), if any. */
  get manifest(): Manifest | undefined {
    return this.#trust.manifest;
  }

  /**
   * A manifest for this database's space, signed by its key: who may write
   * (key ids, or `"anyone"`), mode, replication factor and `seq` (higher
   * than the one it replaces). Adopt it with {@link useManifest}; with a
   * network, it is published to the DHT for the other members.
   */
  createManifest(fields: Omit<ManifestFields, "space">): Promise<Uint8Array> {
    const id = this.#trust.identity;
    if (id === undefined) {
      return Promise.reject(new TrustError("createManifest needs an identity: open with one"));
    }
    try {
      return createManifest(id, { ...fields, space: this.#trust.space });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Adopts a manifest of this space when its signature holds and it is newer
   * than the one in force, from the same owner (the first one adopted pins
   * the owner). From then on, in a space with a writers list, only they (and
   * the owner) write: other ops are refused. Resolves with whether it was adopted.
   */
  useManifest(bytes: Uint8Array): Promise<boolean> {
    try {
      return this.#trust.useManifest(bytes);
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
