// @peer-fixture: replicates with a `lattice serve` node (this file starts it on Deno and Bun,
// scripts/test.mjs starts it for Chromium and creates the WebRTC-Direct interface)
/**
 * A node that only dials — what a browser is — joins a `lattice serve` node
 * and replicates with it both ways: writes made before connecting cross by
 * anti-entropy sync on connect, later ones live by gossip; the server side is
 * read and written over its HTTP API. Once over WebSockets, once over
 * WebRTC-Direct. In Chromium this runs the browser build (WebSockets and
 * WebRTC-Direct transports, the browser connection gater opened with
 * `allowPrivateAddresses`); on Deno and Bun the server build of the same code.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Change, connect, open } from "../mod.ts";
import { createLogger } from "../net/log.ts";
import { startNetwork } from "../net/network.ts";
import { canListen } from "../net/node.ts";
import { PEER_SPACE, type PeerFixture, startPeerFixture } from "./_peer_fixture.ts";

const logger = createLogger({ level: "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Less than the server's periodic sync (30 s): a live write that arrives in time came by gossip. */
const LIVE_MS = 10_000;

async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

const TRANSPORTS = [
  { name: "WebSockets", pattern: /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/p2p\// },
  { name: "WebRTC-Direct", pattern: /^\/ip4\/[\d.]+\/udp\/\d+\/webrtc-direct\/certhash\/[\w-]+\/p2p\// },
];

describe("a dial-only peer (a browser) and a lattice serve node", { timeout: 120_000 }, () => {
  let server: PeerFixture | undefined;
  before(async () => {
    server = await startPeerFixture();
  });
  after(async () => {
    const code = await server?.stop();
    assert.equal(code, 0, "the serve node exits cleanly");
  });

  for (const transport of TRANSPORTS) {
    it(`replicate both ways over ${transport.name}: sync on connect, then live gossip`, async () => {
      const fx = server!;
      const addr = fx.addrs.find((a) => transport.pattern.test(a));
      if (transport.name === "WebRTC-Direct" && fx.webrtcError) assert.fail(fx.webrtcError);
      assert.ok(addr, `a ${transport.name} address among ${fx.addrs.join(" ")}`);
      const tag = `${transport.name}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
      const http = connect(fx.http);
      const db = await open({ storage: "memory" });
      let net: Awaited<ReturnType<typeof startNetwork>> | undefined;
      try {
        // Before they meet: one write on each side.
        await http.put(`${tag}/from-server-early`, { n: 1, by: "server" });
        await db.put(`${tag}/from-peer-early`, { n: 2, by: "peer" });

        net = await startNetwork(db, {
          space: PEER_SPACE,
          listen: [],
          bootstrap: [addr],
          logger,
          allowPrivateAddresses: true,
          syncInterval: 3_600_000,
        });
        const node = net.node;
        // A browser listens nowhere; on Deno and Bun the node also listens on loopback TCP (the default).
        if (!canListen()) assert.deepEqual(node.addrs(), [], "a browser node listens nowhere");
        await eventually("the connection", () => node.peers().some((p) => p.id === fx.peerId));
        const remote = node.peers().find((p) => p.id === fx.peerId)!.addrs.join(" ");
        assert.match(remote, transport.name === "WebSockets" ? /\/ws\b/ : /\/webrtc-direct\b/);

        // Anti-entropy on connect, both ways.
        assert.deepEqual(
          await eventually("the server's early write in the peer", () => db.get(`${tag}/from-server-early`)),
          { n: 1, by: "server" },
        );
        assert.deepEqual(
          await eventually("the peer's early write on the server", () => http.get(`${tag}/from-peer-early`)),
          { n: 2, by: "peer" },
        );
        // Both sessions done (theirs and ours), and gossip subscribed both ways: what follows is live.
        await eventually("the peer's sync with the server", async () => {
          const p = (await net!.peers()).find((x) => x.id === fx.peerId);
          return (p?.sync as { asOf?: number } | undefined)?.asOf !== undefined;
        });
        await eventually("the server's sync with the peer", async () => {
          const p = (await http.peers()).find((x) => x.id === node.peerId);
          return (p?.sync as { asOf?: number } | undefined)?.asOf !== undefined;
        });
        await eventually("the server on the space topic", () => node.topicPeers().includes(fx.peerId));

        // Live: peer → server.
        await db.put(`${tag}/from-peer-live`, { text: "hello from the peer" });
        assert.deepEqual(
          await eventually(
            "the peer's live write on the server",
            () => http.get(`${tag}/from-peer-live`),
            LIVE_MS,
          ),
          { text: "hello from the peer" },
        );

        // Live: server → peer, seen by a watch.
        const seen: Change[] = [];
        const unwatch = db.watch({ prefix: `${tag}/from-server-live` }, (c) => seen.push(c));
        try {
          await http.put(`${tag}/from-server-live`, { text: "hello from the server" });
          await eventually("the server's live write in the peer's watch", () => seen.length > 0, LIVE_MS);
          assert.deepEqual(seen[0], {
            soul: `${tag}/from-server-live`,
            changes: { text: "hello from the server" },
            source: "remote",
          });
        } finally {
          unwatch();
        }
        assert.deepEqual(await db.get(`${tag}/from-server-live`), { text: "hello from the server" });
      } finally {
        await net?.stop();
        await db.close();
        http.close();
      }
    });
  }
});
