/**
 * The libp2p node of a Lattice node: which services it runs and how each is
 * configured, in one place. Identify and ping; a private Kademlia DHT
 * (`/lattice/kad/1.0.0`) that refuses records (`net/dht_records.ts`) and
 * keeps a bounded number of provider records per peer
 * (`net/provider_quota.ts`); gossipsub (`net/gossip.ts`); a connection gater
 * that denies refused peers (`net/peer_guard.ts`); a circuit relay when
 * asked (`net/relay.ts`). The transports, listen
 * addresses, encryption and stream muxer come from the caller
 * (`net/transports.ts` has the runtime's defaults), so a simulator can pass
 * its own.
 *
 * @module
 */
import { createLibp2p, type Libp2p } from "libp2p";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { type KadDHT, kadDHT, passthroughMapper } from "@libp2p/kad-dht";
import type { GossipSub } from "@libp2p/gossipsub";
import type { PeerId, PrivateKey } from "@libp2p/interface";
import { DHT_PROTOCOL, refusePublicKeyRecord, selectRecord, validateRecord } from "./dht_records.ts";
import { gossipService } from "./gossip.ts";
import type { PeerBudgets } from "./peer_budget.ts";
import { type KeyedStore, limitProviderRecords } from "./provider_quota.ts";
import type { EncrypterFactory, MuxerFactory, TransportFactory } from "./transports.ts";
import { relayService } from "./relay.ts";

/** A started libp2p node with the services Lattice uses. */
export type LatticeLibp2p = Libp2p<{ dht: KadDHT; pubsub: GossipSub }>;

/** What {@link startLibp2p} builds a node from. */
export interface Libp2pParts {
  readonly privateKey: PrivateKey;
  readonly listen: string[];
  readonly transports: TransportFactory[];
  readonly encrypters: EncrypterFactory[];
  readonly muxers: MuxerFactory[];
  // deno-lint-ignore no-explicit-any
  readonly peerDiscovery: any[];
  /** The space's gossip topic (its score parameters are set per topic). */
  readonly topic: string;
  /** Refused peers are denied every connection; provider records are limited by its limits. */
  readonly budgets: PeerBudgets;
  /** Browsers: dial private addresses and plain `ws://` (see `NetNodeOptions.allowPrivateAddresses`). */
  readonly allowPrivateAddresses?: boolean;
  /** Offer a circuit relay to other peers (`lattice serve --relay`, `net/relay.ts`). */
  readonly relay?: boolean;
}

/** Listen addresses that need no listening socket: a relay reservation, incoming WebRTC. */
const isDialOnlyListen = (addr: string): boolean => addr === "/p2p-circuit" || addr === "/webrtc";

/** Creates and starts the libp2p node; a listen address that fails is one clear `Error`. */
export async function startLibp2p(parts: Libp2pParts): Promise<LatticeLibp2p> {
  const { budgets, listen } = parts;
  const refusedId = (peer: PeerId): boolean => budgets.refused(peer.toString());
  const libp2p: LatticeLibp2p = await createLibp2p({
    start: false,
    privateKey: parts.privateKey,
    addresses: { listen },
    peerDiscovery: parts.peerDiscovery,
    transports: parts.transports,
    connectionGater: {
      // The browser default refuses private addresses and plain ws:// (see allowPrivateAddresses).
      ...(parts.allowPrivateAddresses ? { denyDialMultiaddr: () => false } : {}),
      // Peers that misbehaved (see penalize), for their cool-off period.
      denyDialPeer: refusedId,
      denyInboundEncryptedConnection: refusedId,
      denyOutboundEncryptedConnection: refusedId,
      denyInboundRelayReservation: refusedId,
    },
    connectionEncrypters: parts.encrypters,
    streamMuxers: parts.muxers,
    connectionManager: {
      // Every peer of a local test shares 127.0.0.1: the default (5/s per IP) resets connections.
      inboundConnectionThreshold: 1000,
      maxConnections: 300,
    },
    services: {
      identify: identify(),
      ping: ping({ maxOutboundStreams: 4 }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        // A node that listens nowhere (a browser) cannot be dialed back: it queries but does not serve.
        clientMode: listen.every(isDialOnlyListen),
        // The default mapper drops private addresses, which makes loopback and LAN spaces unreachable.
        peerInfoMapper: passthroughMapper,
        validators: { lattice: validateRecord, pk: refusePublicKeyRecord },
        selectors: { lattice: selectRecord },
        initialQuerySelfInterval: 200,
      }),
      pubsub: gossipService(parts.topic),
      ...(parts.relay ? { relay: relayService() } : {}),
    },
  });
  // kad-dht keeps provider records in the libp2p datastore and offers no quota: bound them there.
  // deno-lint-ignore no-explicit-any
  limitProviderRecords((libp2p as any).components.datastore as KeyedStore, {
    perPeer: budgets.limits.providerRecords,
    total: budgets.limits.providerRecordsTotal,
    self: libp2p.peerId.toString(),
  });
  try {
    await libp2p.start();
  } catch (e) {
    await Promise.resolve(libp2p.stop()).catch(() => {});
    throw listenError(e as Error) ?? e;
  }
  return libp2p;
}

/**
 * libp2p's error for listen addresses that failed is several lines long and
 * names its own configuration: one sentence per address instead, the
 * original as `cause`.
 */
function listenError(e: Error): Error | undefined {
  if (e?.name !== "UnsupportedListenAddressesError") return undefined;
  const failures = String(e.message).split("\n").map((l) => l.trim()).filter((l) => l.startsWith("/"));
  return new Error(
    `Cannot listen on ${failures.length > 0 ? failures.join("; ") : "the listen addresses"}`,
    { cause: e },
  );
}
