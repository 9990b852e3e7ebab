/**
 * How a node reaches other nodes on the runtime it runs on: the only place
 * that chooses libp2p transports, connection encryption and local discovery
 * per runtime. Node-only parts (TCP, mDNS, the native WebRTC module) load
 * lazily, with `import()`, so a browser bundle never pulls them in.
 *
 * A node takes these as defaults; its options can replace them (a simulator
 * passes an in-memory transport), see `NetNodeOptions` in `net/node.ts`.
 *
 * @module
 */
import type { Libp2pInit } from "libp2p";
import { noise, pureJsCrypto } from "@libp2p/noise";
import { yamux } from "@libp2p/yamux";
import { type RuntimeName, runtimeName } from "../runtime/detect.ts";

/** One libp2p transport factory (what `createLibp2p({ transports })` takes). */
export type TransportFactory = NonNullable<Libp2pInit["transports"]>[number];
/** One libp2p connection encrypter factory. */
export type EncrypterFactory = NonNullable<Libp2pInit["connectionEncrypters"]>[number];
/** One libp2p stream muxer factory. */
export type MuxerFactory = NonNullable<Libp2pInit["streamMuxers"]>[number];

/** The stream muxer of every runtime: yamux. */
export function defaultMuxers(): MuxerFactory[] {
  return [yamux()];
}

/** The transports of a runtime, the addresses it listens on by default, and its encryption. */
export interface RuntimeTransports {
  readonly transports: TransportFactory[];
  readonly listen: string[];
  readonly encrypter: EncrypterFactory;
}

/**
 * Browsers can only dial: no runtime there lets a page accept TCP, WebSocket
 * or UDP connections (a page is reached through a relay, {@link BROWSER_LISTEN}).
 */
export function canListen(): boolean {
  return runtimeName() !== "browser";
}

/** A WebRTC-Direct multiaddr (`/ip4/…/udp/…/webrtc-direct`). */
const isWebRtcDirect = (addr: string): boolean => addr.includes("/webrtc-direct");

/**
 * WebRTC-Direct, without public STUN servers (the default configuration asks
 * Google's): a WebRTC-Direct dial needs none, and Lattice sends nothing to
 * hosts it was not told about. On servers it loads the native
 * `node-datachannel` module, so servers load it only when asked to
 * (a `/webrtc-direct` listen or bootstrap address).
 */
async function webRtcDirectTransport(certificate?: WebRtcCertificateInit): Promise<TransportFactory> {
  const { webRTCDirect } = await import("@libp2p/webrtc");
  return webRTCDirect({ rtcConfiguration: { iceServers: [] }, certificate }) as TransportFactory;
}

/** The listener's certificate (PEM key and certificate, and its hash), as `webRTCDirect({ certificate })` takes it. */
export interface WebRtcCertificateInit {
  readonly privateKey: string;
  readonly pem: string;
  readonly certhash: string;
}

/**
 * Browser to browser: the circuit relay transport, which reserves a slot on
 * every relay the page connects to (`lattice serve --relay`) and so gives it
 * a `/p2p-circuit` address, and WebRTC, which signals over such a relayed
 * connection and then connects the two pages directly (no STUN servers, as
 * above: host candidates only, enough on one machine or LAN). Listening on
 * `/p2p-circuit` and `/webrtc` opens no socket.
 */
async function browserToBrowserTransports(): Promise<TransportFactory[]> {
  const [{ webRTC }, { circuitRelayTransport }] = await Promise.all([
    import("@libp2p/webrtc"),
    import("@libp2p/circuit-relay-v2"),
  ]);
  return [
    webRTC({ rtcConfiguration: { iceServers: [] } }) as TransportFactory,
    // Relayed connections being opened to this page at once (default 300): each is only a WebRTC set-up.
    circuitRelayTransport({ maxInboundStopStreams: 32 }) as TransportFactory,
  ];
}

/** What a page listens on: relay reservations and WebRTC through them (no socket). */
export const BROWSER_LISTEN: readonly string[] = ["/p2p-circuit", "/webrtc"];

/**
 * The transports `runtime` offers: WebSockets, WebRTC-Direct, and WebRTC
 * through a circuit relay in browsers (which listen only on
 * {@link BROWSER_LISTEN}); TCP and WebSockets on servers, on loopback by
 * default, plus WebRTC-Direct when one of `addrs` (listen or bootstrap) is a
 * `/webrtc-direct` address. A server's WebRTC-Direct listener uses
 * `certificate` when given (its address then keeps its certhash; default: a
 * new one at each start).
 */
export async function runtimeTransports(
  runtime: RuntimeName,
  addrs: readonly string[],
  certificate?: WebRtcCertificateInit,
): Promise<RuntimeTransports> {
  const { webSockets } = await import("@libp2p/websockets");
  if (runtime === "browser") {
    return {
      transports: [webSockets(), await webRtcDirectTransport(), ...await browserToBrowserTransports()],
      listen: [...BROWSER_LISTEN],
      encrypter: noise(),
    };
  }
  const { tcp } = await import("@libp2p/tcp");
  const transports: TransportFactory[] = [tcp(), webSockets()];
  if (addrs.some(isWebRtcDirect)) transports.push(await webRtcDirectTransport(certificate));
  return {
    transports,
    listen: ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/ws"],
    // Bun's node:crypto lacks chacha20-poly1305: frames ≥ 1200 bytes fail with native crypto.
    encrypter: runtime === "bun" ? noise({ crypto: pureJsCrypto }) : noise(),
  };
}

/**
 * mDNS peer discovery (`@libp2p/mdns`), loaded only when asked for: it needs
 * UDP multicast (`node:dgram`), which browsers lack. The service tag is made
 * from the space's topic hash, so nodes of other spaces (and other libp2p
 * programs on the LAN, `_p2p._udp.local`) neither answer nor get dialed.
 */
// deno-lint-ignore no-explicit-any
export async function mdnsDiscovery(runtime: RuntimeName, topic: string, interval?: number): Promise<any> {
  if (runtime === "browser") {
    throw new TypeError("mDNS discovery needs UDP multicast, which browsers do not offer");
  }
  const specifier = "@libp2p/mdns"; // a variable: bundlers leave it out of browser builds
  const { mdns } = await import(specifier);
  const hash = topic.slice(topic.lastIndexOf("/") + 1, topic.lastIndexOf("/") + 17);
  return mdns({ serviceTag: `_lattice-${hash}._udp.local`, interval: interval ?? 10_000 });
}
