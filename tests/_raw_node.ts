/**
 * An attacker (or bystander) for network tests: a plain libp2p node, not a
 * Lattice one, so it can send what Lattice never would; and what those tests
 * share: `until` (a polling wait), `send` and `varint` (writing frames on a
 * raw stream).
 *
 * @module
 */
import { createLibp2p, type Libp2p } from "libp2p";
import { noise, pureJsCrypto } from "@libp2p/noise";
import { yamux } from "@libp2p/yamux";
import { tcp } from "@libp2p/tcp";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { gossipsub } from "@libp2p/gossipsub";
import { kadDHT, passthroughMapper } from "@libp2p/kad-dht";
import type { Stream } from "@libp2p/interface";
import { DHT_PROTOCOL } from "../net/node.ts";

const isBun = "Bun" in globalThis;

/** Polls `check` every 25 ms until it holds; throws naming `what` after `ms`. */
export async function until(
  what: string,
  ms: number,
  check: () => boolean | Promise<boolean>,
): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// deno-lint-ignore no-explicit-any
export type Raw = Libp2p<any>;

/** An attacker (or bystander): plain libp2p, with gossipsub and/or the Lattice DHT protocol if asked. */
export async function rawNode(services: { gossip?: boolean; dht?: boolean } = {}): Promise<Raw> {
  return await createLibp2p({
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    connectionEncrypters: [isBun ? noise({ crypto: pureJsCrypto }) : noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 1000 },
    services: {
      identify: identify(),
      ping: ping({ maxOutboundStreams: 4 }),
      ...(services.gossip
        ? {
          pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, heartbeatInterval: 200 }),
        }
        : {}),
      ...(services.dht
        ? {
          dht: kadDHT({
            protocol: DHT_PROTOCOL,
            clientMode: false,
            peerInfoMapper: passthroughMapper,
            // The attacker accepts anything, so it sees whatever the victim kept and hands back.
            validators: { lattice: () => {} },
            selectors: { lattice: () => 0 },
            allowQueryWithZeroPeers: true,
          }),
        }
        : {}),
    },
  });
}

/** Unsigned LEB128, as Lattice channels frame. */
export function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** Writes `bytes` on `stream`, waiting for it to drain when it asks to. */
export async function send(stream: Stream, bytes: Uint8Array): Promise<void> {
  if (!stream.send(bytes)) await stream.onDrain();
}
