/**
 * What the DHT (`/lattice/kad/1.0.0`) stores for other peers besides
 * provider records: nothing. kad-dht keeps any record a peer PUTs under a
 * namespace it validates, so each namespace it knows gets a validator here
 * that refuses, and a peer cannot make this node keep bytes nobody reads.
 * (Provider records have their quota in `net/provider_quota.ts`.)
 *
 * @module
 */

/** DHT protocol id: a private DHT, so Lattice nodes never join the public IPFS one. */
export const DHT_PROTOCOL = "/lattice/kad/1.0.0";

/**
 * `/lattice/` records. Lattice stores none yet (the signed space manifest,
 * docs/API.md "Not available yet", is not built), so every one is refused: a record nobody
 * reads is only a way for a peer to make this node keep its bytes (before:
 * 1,000 PUT_VALUEs of 64 KiB were all kept). A record kind that Lattice comes
 * to use gets its own check here, with it.
 */
export function validateRecord(key: Uint8Array, _value: Uint8Array): void {
  const name = new TextDecoder().decode(key.subarray(0, 64));
  throw new TypeError(`Cannot accept DHT record ${JSON.stringify(name)}: Lattice uses no /lattice/ records`);
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
 * Deterministic choice among valid records: the greatest by bytes, so every peer picks the same one.
 * (kad-dht wants a selector for each namespace it validates; with no valid `/lattice/` record it idles.)
 */
export function selectRecord(_key: Uint8Array, records: Uint8Array[]): number {
  let best = 0;
  for (let i = 1; i < records.length; i++) if (compareBytes(records[i], records[best]) > 0) best = i;
  return best;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
