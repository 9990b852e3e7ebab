// @peer-fixture: replicates with a `lattice serve` node (this file starts it on Deno and Bun,
// scripts/test.mjs starts it for Chromium and creates the WebRTC-Direct interface)
/**
 * A node that only dials — what a browser is — joins a `lattice serve` node
 * through the public entry point, `open({ network })`, and replicates with it
 * both ways: writes made before connecting cross by anti-entropy sync on
 * connect, later ones live by gossip; the server side is read and written
 * over its HTTP API. Once over WebSockets, once over WebRTC-Direct. In
 * Chromium this runs the browser build (WebSockets and WebRTC-Direct
 * transports, the browser connection gater opened with
 * `allowPrivateAddresses`); on Deno and Bun the server build of the same code.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Change, connect, createLogger, open, type OpenedDatabase } from "../mod.ts";
import { eventually } from "./_eventually.ts";
import { PEER_SPACE, type PeerFixture, startPeerFixture } from "./_peer_fixture.ts";

const logger = createLogger({ level: "silent" });
const isBrowser = !("Deno" in globalThis) && !("Bun" in globalThis);
/** Less than the server's periodic sync (30 s): a live write that arrives in time came by gossip. */
const LIVE_MS = 10_000;
/** How long the other waits may take. */
const WAIT_MS = 15_000;

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
      const http = connect(fx.http, { token: fx.token });
      let opened: OpenedDatabase | undefined;
      try {
        // Before they meet: the server writes, then the peer opens and writes at once (open does not
        // wait for the connection, and gossip reaches nobody yet).
        await http.put(`${tag}/from-server-early`, { n: 1, by: "server" });
        const db = opened = await open({
          storage: "memory",
          network: {
            space: PEER_SPACE,
            bootstrap: [addr],
            logger,
            allowPrivateAddresses: true,
            syncInterval: 3_600_000,
          },
        });
        await db.put(`${tag}/from-peer-early`, { n: 2, by: "peer" });
        const net = db.network!;
        // A browser listens nowhere; on Deno and Bun the node also listens on loopback TCP (the default).
        if (isBrowser) assert.deepEqual(net.addrs(), [], "a browser node listens nowhere");
        else assert.ok(net.addrs().length > 0, "a server node listens by default");
        await eventually("the connection", () => net.peers().some((p) => p.id === fx.peerId), WAIT_MS);
        const remote = net.peers().find((p) => p.id === fx.peerId)!.addrs.join(" ");
        assert.match(remote, transport.name === "WebSockets" ? /\/ws\b/ : /\/webrtc-direct\b/);

        // Anti-entropy on connect, both ways.
        assert.deepEqual(
          await eventually(
            "the server's early write in the peer",
            () => db.get(`${tag}/from-server-early`),
            WAIT_MS,
          ),
          { n: 1, by: "server" },
        );
        assert.deepEqual(
          await eventually(
            "the peer's early write on the server",
            () => http.get(`${tag}/from-peer-early`),
            WAIT_MS,
          ),
          { n: 2, by: "peer" },
        );
        // Both sessions done (theirs and ours), and gossip subscribed both ways: what follows is live.
        await eventually("the peer's sync with the server", () => {
          return net.peers().find((x) => x.id === fx.peerId)?.sync.asOf !== undefined;
        }, WAIT_MS);
        await eventually("the server's sync with the peer", async () => {
          const p = (await http.peers()).find((x) => x.id === net.peerId);
          return (p?.sync as { asOf?: number } | undefined)?.asOf !== undefined;
        }, WAIT_MS);
        await eventually(
          "the server on the space topic",
          () => net.peers().find((x) => x.id === fx.peerId)?.gossip,
          WAIT_MS,
        );

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
        await opened?.close();
        if (opened) assert.deepEqual(opened.network!.peers(), [], "close() left the network");
        http.close();
      }
    });
  }
});
