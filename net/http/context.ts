/**
 * The state one running HTTP API shares among its parts (net/http.ts starts
 * it; routes, guards, body reading, event streams and error answers take it
 * as their first argument), and the networking facts it is given. A plain
 * record instead of a class: each part is a set of functions over it, in the
 * file of its concept.
 *
 * @module
 */
import type { ServerResponse } from "node:http";
import type { Change, Database } from "../../core/database.ts";
import type { World } from "../../core/world.ts";
import type { Logger } from "../../runtime/log.ts";

/** A connected peer as `GET /v1/peers` lists it; networking may add fields (sync state, latency, …). */
export interface PeerInfo {
  /** The peer id. */
  readonly id: string;
  /** Its known multiaddrs. */
  readonly addrs: readonly string[];
  readonly [key: string]: unknown;
}

/** What the HTTP API cannot learn from the database: networking facts, supplied by the caller. */
export interface StatusExtras {
  /** This node's peer id, or `null` without networking. */
  readonly peerId: string | null;
  /** The multiaddrs it listens on. */
  readonly addrs: readonly string[];
  /** The space it serves. */
  readonly space: string;
  /** The connected peers. */
  readonly peers: readonly PeerInfo[];
  /** The circuit relay it offers (`lattice serve --relay`): reservations held and the most it holds. */
  readonly relay?: { readonly reservations: number; readonly maxReservations: number };
}

/** The state of one running HTTP API (see the module doc). */
export interface Context {
  readonly db: Database;
  readonly info: () => StatusExtras | Promise<StatusExtras>;
  readonly maxBody: number;
  readonly bodyTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly log: Logger;
  /** Clock and timers (default `systemWorld`). */
  readonly world: World;
  /** Each open event stream by its `end`. */
  readonly streams: Map<() => void, Stream>;
  /** The `data:` event of each change being sent, encoded once for every stream it goes to. */
  readonly events: WeakMap<Change, Uint8Array>;
  /** Open event streams per client address. */
  readonly streamsByClient: Map<string, number>;
  readonly maxStreams: number;
  readonly maxStreamsPerClient: number;
  /** Backlog in bytes past which an event stream is closed. */
  readonly streamBuffer: number;
  /** Backlog of all event streams together past which the largest is closed. */
  readonly streamsBuffer: number;
  closing: boolean;
  /** Turns of the event loop in which event streams were written to (see {@link backlog}). */
  turn: number;
  /** Whether the end of the current turn is scheduled. */
  turnEnding: boolean;
  inspector: string | undefined;
  /** The bearer token, or `null` without authentication. */
  readonly token: string | null;
  readonly loopbackReads: boolean;
  /** Origins granted CORS, as `URL.origin` writes them. */
  readonly corsOrigins: ReadonlySet<string>;
  /** `Host` values served besides IP literals and `localhost` with the port: `name` or `name:port`, lowercase. */
  readonly hosts: Set<string>;
  /** The port listened on. */
  port: number;
}

/** An open event stream, as the backlog limits see it. */
export interface Stream {
  readonly res: ServerResponse;
  /** The turn ({@link Context.turn}) that {@link Stream.fresh} counts. */
  turn: number;
  /** Bytes written to it in that turn. */
  fresh: number;
}
