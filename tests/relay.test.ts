// @server-only: starts `lattice serve --relay` and dials it over TCP with a bare libp2p client
/**
 * `lattice serve --relay` offers a circuit relay: its `--json` ready line and
 * `GET /v1/status` say so, and a bare libp2p client (TCP, noise, yamux,
 * identify, the circuit relay transport listening on `/p2p-circuit`) that
 * dials it reserves a slot and gets a `/p2p-circuit` address through it. A
 * node without `--relay` offers none: the same client gets no such address.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLibp2p, type Libp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@libp2p/noise";
import { yamux } from "@libp2p/yamux";
import { identify } from "@libp2p/identify";
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { multiaddr } from "@multiformats/multiaddr";
import { type ServeProcess, startServe } from "./_serve.ts";
import { eventually } from "./_eventually.ts";
import { RELAY_LIMITS } from "../net/relay.ts";

/** A client that asks every relay it connects to for a reservation. */
function relayClient(): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ["/p2p-circuit"] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
  });
}

const circuitAddrs = (client: Libp2p): string[] =>
  client.getMultiaddrs().map(String).filter((a) => a.includes("/p2p-circuit"));

async function status(node: ServeProcess): Promise<Record<string, unknown>> {
  const res = await fetch(`${node.ready.http}/v1/status`);
  assert.equal(res.status, 200);
  return await res.json();
}

describe("lattice serve --relay", { timeout: 90_000 }, () => {
  const nodes: ServeProcess[] = [];
  const clients: Libp2p[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    for (const n of nodes) assert.equal(await n.stop(), 0, "the serve node exits cleanly");
  });

  it("reports the relay and gives a client a reservation and a /p2p-circuit address", async () => {
    const relay = await startServe(["serve", "--memory", "--http", "127.0.0.1:0", "--json", "--relay"]);
    nodes.push(relay);
    assert.equal(JSON.parse(relay.ready.line).relay, true);
    assert.deepEqual((await status(relay)).relay, {
      reservations: 0,
      maxReservations: RELAY_LIMITS.maxReservations,
    });
    const client = await relayClient();
    clients.push(client);
    await client.dial(multiaddr(relay.ready.addrs[0]));
    const addrs = await eventually("a /p2p-circuit address through the relay", () => {
      const a = circuitAddrs(client);
      return a.length > 0 && a;
    });
    assert.ok(
      addrs.some((a) => a.includes(`/p2p/${relay.ready.peerId}/p2p-circuit/p2p/${client.peerId}`)),
      addrs.join(" "),
    );
    await eventually("the relay counts the reservation", async () => {
      const r = (await status(relay)).relay as { reservations: number };
      return r.reservations === 1;
    });
  });

  it("offers no relay without --relay", async () => {
    const plain = await startServe(["serve", "--memory", "--http", "127.0.0.1:0", "--json"]);
    nodes.push(plain);
    assert.equal(JSON.parse(plain.ready.line).relay, undefined);
    assert.equal((await status(plain)).relay, undefined);
    const client = await relayClient();
    clients.push(client);
    await client.dial(multiaddr(plain.ready.addrs[0]));
    // Identify has run once the client knows the node's protocols: a relay would be listed there.
    await eventually("identify with the node", async () => {
      const peer = await client.peerStore.get(client.getPeers()[0]).catch(() => undefined);
      return (peer?.protocols.length ?? 0) > 0;
    });
    const peer = await client.peerStore.get(client.getPeers()[0]);
    assert.ok(!peer.protocols.includes("/libp2p/circuit/relay/0.2.0/hop"), peer.protocols.join(" "));
    assert.deepEqual(circuitAddrs(client), []);
  });
});
