/**
 * The circuit relay a server node offers with `lattice serve --relay`
 * (`@libp2p/circuit-relay-v2`): peers that cannot be dialed (browsers) reserve
 * a slot on it, get a `/p2p-circuit` address, and two of them reach each
 * other through it — in practice only long enough to set up a direct WebRTC
 * connection (`net/transports.ts`), since relayed connections are "limited"
 * and Lattice's protocols (sync, gossip) do not run over them.
 *
 * The limits are what a hostile peer could otherwise spend: a fixed number of
 * reservations (one per peer id; sybils fill the table, never memory), short
 * ones, and each relayed connection capped in time and bytes — enough for
 * WebRTC signalling (a few kB of SDP and ICE candidates), far too little to
 * use the relay as a free pipe.
 *
 * @module
 */
import { circuitRelayServer } from "@libp2p/circuit-relay-v2";

/** The relay's bounds (see the module doc); `lattice serve --relay` runs with these. */
export const RELAY_LIMITS = {
  /** Reservations held at once, over all peers (one per peer id). */
  maxReservations: 64,
  /** How long a reservation lasts before the peer must refresh it (ms). */
  reservationTtlMs: 10 * 60_000,
  /** How long one relayed connection may stay open (ms). */
  circuitDurationMs: 2 * 60_000,
  /** Bytes one relayed connection may carry in each direction. */
  circuitBytes: 128 * 1024,
  /** HOP streams (reserve or connect requests) open at once. */
  maxHopStreams: 64,
  /** STOP streams (relayed connections being opened to reserved peers) open at once. */
  maxStopStreams: 64,
  /** A HOP request must complete within this (ms). */
  hopTimeoutMs: 10_000,
} as const;

/** A relay's state, as `GET /v1/status` shows it (`relay`) for a node that runs one. */
export interface RelayStatus {
  /** Reservations held now. */
  readonly reservations: number;
  /** Most reservations held at once ({@link RELAY_LIMITS}). */
  readonly maxReservations: number;
}

/** The libp2p service of a relay with {@link RELAY_LIMITS}, for `createLibp2p({ services })`. */
export function relayService(): ReturnType<typeof circuitRelayServer> {
  const l = RELAY_LIMITS;
  return circuitRelayServer({
    hopTimeout: l.hopTimeoutMs,
    maxInboundHopStreams: l.maxHopStreams,
    maxOutboundHopStreams: l.maxHopStreams,
    maxOutboundStopStreams: l.maxStopStreams,
    reservations: {
      maxReservations: l.maxReservations,
      reservationTtl: l.reservationTtlMs,
      applyDefaultLimit: true,
      defaultDurationLimit: l.circuitDurationMs,
      defaultDataLimit: BigInt(l.circuitBytes),
    },
  });
}

/** The state of `service` (the libp2p node's `relay` service), or `undefined` without one. */
export function relayStatus(
  service: { reservations: { size: number } } | undefined,
): RelayStatus | undefined {
  if (service === undefined) return undefined;
  return { reservations: service.reservations.size, maxReservations: RELAY_LIMITS.maxReservations };
}
