/**
 * What `open({ network })` runs, loaded by `mod.ts` with a dynamic
 * `import()` so that a program that never asks for a network never loads
 * libp2p (the bundle's network chunk, scripts/build-dist.mjs, starts here):
 * the address checks that need the multiaddr parser, and `startNetwork`
 * (net/network.ts), which starts full replication for the open database.
 *
 * @module
 */
import { multiaddr } from "@multiformats/multiaddr";
import type { NetworkOptions } from "./network_options.ts";
import { canListen } from "./node.ts";

export { startNetwork } from "./network.ts";

/**
 * Checks what `checkNetworkOptions` cannot without the multiaddr
 * parser: every `listen` and `bootstrap` entry parses, and a browser is not
 * asked to listen. Throws `TypeError` or `RangeError`; starts nothing.
 */
export function checkAddresses(options: NetworkOptions): void {
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
