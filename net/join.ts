/**
 * What `open({ network })` runs, loaded by `mod.ts` with a dynamic
 * `import()` so that a program that never asks for a network never loads
 * libp2p: the address checks that need the multiaddr parser, and
 * {@link joinNetwork}, which starts full replication for an open database
 * ({@link startNetwork}) and gives the `db.network` view of it.
 *
 * @module
 */
import type { Database } from "../core/database.ts";
import { multiaddr } from "@multiformats/multiaddr";
import { createLogger } from "./log.ts";
import { startNetwork } from "./network.ts";
import type { CheckedNetworkOptions, Network } from "./network_options.ts";
import { canListen } from "./node.ts";

/**
 * Checks what {@link checkNetworkOptions} cannot without the multiaddr
 * parser: every `listen` and `bootstrap` entry parses, and a browser is not
 * asked to listen. Throws `TypeError` or `RangeError`; starts nothing.
 */
export function checkAddresses(options: CheckedNetworkOptions): void {
  for (const name of ["listen", "bootstrap"] as const) {
    options[name].forEach((addr, i) => {
      try {
        multiaddr(addr);
      } catch (e) {
        throw new TypeError(
          `network.${name}[${i}] is not a valid multiaddr (${JSON.stringify(addr)}): ${(e as Error).message}`,
        );
      }
    });
  }
  if (options.listen.length > 0 && !canListen()) {
    throw new RangeError(
      "network.listen must be empty in a browser: a page cannot accept connections, it only dials " +
        "(give the nodes to join in network.bootstrap)",
    );
  }
}

/** A started network: its `db.network` view and how to leave it. */
export interface JoinedNetwork {
  readonly network: Network;
  /** Leaves the network: hands every commit seen so far to gossip, ends sync sessions, stops libp2p. */
  stop(): Promise<void>;
}

/**
 * Starts full replication of `db` with `options` (checked by
 * `checkNetworkOptions` and {@link checkAddresses}). Rejects, having stopped
 * whatever it started, if starting fails or `options.signal` aborts first.
 */
export async function joinNetwork(db: Database, options: CheckedNetworkOptions): Promise<JoinedNetwork> {
  const running = await startNetwork(db, {
    listen: options.listen,
    bootstrap: options.bootstrap,
    space: options.space,
    logger: options.logger ?? createLogger(),
    allowPrivateAddresses: options.allowPrivateAddresses,
    mdns: options.mdns,
    syncInterval: options.syncInterval,
    limits: options.limits,
    signal: options.signal,
  });
  // Aborting the signal stops `running` by itself (see startNetwork); this flag only tracks it here.
  let stopped = false;
  const onAbort = () => stopped = true;
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) stopped = true;
  const stop = async (): Promise<void> => {
    stopped = true;
    options.signal?.removeEventListener("abort", onAbort);
    await running.stop();
  };
  const network: Network = {
    peerId: running.peerId,
    space: options.space,
    addrs: () => stopped ? [] : running.node.addrs(),
    peers: () => running.peers(),
  };
  return { network, stop };
}
