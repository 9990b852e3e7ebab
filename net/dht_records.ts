/**
 * What the DHT (`/lattice/kad/1.0.0`) stores for other peers besides
 * provider records: signed space manifests, and nothing else. kad-dht keeps
 * any record a peer PUTs under a namespace it validates, so each namespace
 * it knows gets a validator here, and a peer cannot make this node keep
 * bytes nobody reads.
 * (Provider records have their quota in `net/provider_quota.ts`.)
 *
 * @module
 */
import { decodeManifest, manifestKey, readManifest } from "../core/trust/manifest.ts";

/** DHT protocol id: a private DHT, so Lattice nodes never join the public IPFS one. */
export const DHT_PROTOCOL = "/lattice/kad/1.0.0";

/**
 * `/lattice/` records: only space manifests (core/trust/manifest.ts), under
 * `/lattice/space/<hex sha256(space)>`, kept when the value is a manifest of
 * that very space whose owner's signature holds. Anything else is refused:
 * a record nobody reads is only a way for a peer to make this node keep its
 * bytes (before: 1,000 PUT_VALUEs of 64 KiB were all kept).
 */
export async function validateRecord(key: Uint8Array, value: Uint8Array): Promise<void> {
  const name = new TextDecoder().decode(key.subarray(0, 96));
  if (name.startsWith(MANIFEST_PREFIX)) {
    const m = await readManifest(value);
    if (m !== undefined && sameBytes(manifestKey(m.space), key)) return;
    throw new TypeError(
      `Cannot accept DHT record ${JSON.stringify(name)}: not a signed manifest of that space`,
    );
  }
  throw new TypeError(`Cannot accept DHT record ${JSON.stringify(name)}: Lattice keeps only space manifests`);
}

const MANIFEST_PREFIX = "/lattice/space/";

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * `/pk/` records (kad-dht accepts them by default): Lattice peer ids are
 * Ed25519 and carry their public key, so nobody needs one, and each is
 * otherwise a free record per generated key.
 */
export function refusePublicKeyRecord(): void {
  throw new TypeError("Cannot accept DHT record: Lattice uses no /pk/ records (peer ids carry their key)");
}

/**
 * Deterministic choice among valid records (kad-dht wants a selector for
 * each namespace it validates): the manifest with the highest `seq`, ties
 * broken by the greatest bytes, so every peer picks the same one. (A replica
 * adopts only manifests of the owner it follows: core/db/trust.ts.)
 */
export function selectRecord(_key: Uint8Array, records: Uint8Array[]): number {
  let best = 0;
  for (let i = 1; i < records.length; i++) {
    const a = decodeManifest(records[i])?.seq ?? -1, b = decodeManifest(records[best])?.seq ?? -1;
    if (a > b || (a === b && compareBytes(records[i], records[best]) > 0)) best = i;
  }
  return best;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
