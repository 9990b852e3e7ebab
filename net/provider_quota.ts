/**
 * A quota on the DHT provider records other peers make this node keep.
 *
 * kad-dht 16 has none: its ADD_PROVIDER handler stores one record per (CID,
 * sender) for every CID a peer announces, kept 48 h, with no per-peer or total
 * bound and no option to set one (its `Providers` takes only a datastore
 * prefix). Measured before this quota: 1,000 ADD_PROVIDERs from one peer were
 * all kept. The only place every provider record passes through is the
 * libp2p datastore (`/dht/provider/<multihash b32>/<peer id>`), so the quota
 * wraps that datastore's `put` and `delete`: a new record beyond the quota is
 * refused (the handler fails, the sender's stream is reset), a record that
 * expires or is removed frees its place. This node's own records never count.
 *
 * @module
 */

/** The two datastore methods the quota wraps (a libp2p `Datastore` has them). */
export interface KeyedStore {
  put(key: { toString(): string }, value: Uint8Array, options?: unknown): unknown;
  delete(key: { toString(): string }, options?: unknown): unknown;
}

/** Limits of {@link limitProviderRecords}. */
export interface ProviderQuota {
  /** Records kept per providing peer. */
  readonly perPeer: number;
  /** Records kept for all other peers together. */
  readonly total: number;
  /** This node's peer id: its own records are not counted. */
  readonly self: string;
}

const PREFIX = "/dht/provider/";

/** What {@link limitProviderRecords} counts, for status and tests. */
export interface ProviderCounts {
  /** Records kept for other peers. */
  readonly total: number;
  /** Records kept for `peer`. */
  of(peer: string): number;
}

/**
 * Wraps `store.put`/`store.delete` (in place: kad-dht holds the same object)
 * so that provider records of other peers stay within `quota`.
 */
export function limitProviderRecords(store: KeyedStore, quota: ProviderQuota): ProviderCounts {
  const keys = new Set<string>();
  const perPeer = new Map<string, number>();
  const put = store.put.bind(store), del = store.delete.bind(store);
  store.put = (key, value, options) => {
    const k = key.toString();
    const peer = providerOf(k);
    if (peer !== undefined && peer !== quota.self && !keys.has(k)) {
      const n = perPeer.get(peer) ?? 0;
      if (n >= quota.perPeer || keys.size >= quota.total) {
        throw new RangeError(
          `Cannot keep DHT provider record: ${
            n >= quota.perPeer ? `peer ${peer} has ${n}, its limit` : `${keys.size} are kept, the limit`
          }`,
        );
      }
      keys.add(k);
      perPeer.set(peer, n + 1);
    }
    return put(key, value, options);
  };
  store.delete = (key, options) => {
    const k = key.toString();
    if (keys.delete(k)) {
      const peer = providerOf(k) as string, n = (perPeer.get(peer) ?? 1) - 1;
      if (n === 0) perPeer.delete(peer);
      else perPeer.set(peer, n);
    }
    return del(key, options);
  };
  return {
    get total() {
      return keys.size;
    },
    of: (peer) => perPeer.get(peer) ?? 0,
  };
}

/** The provider's peer id in a provider record key, or `undefined` for any other key. */
function providerOf(key: string): string | undefined {
  if (!key.startsWith(PREFIX)) return undefined;
  const slash = key.indexOf("/", PREFIX.length);
  return slash < 0 ? undefined : key.slice(slash + 1);
}
