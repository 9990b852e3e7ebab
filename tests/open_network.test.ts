// @server-only: libp2p nodes listening on 127.0.0.1, child processes, esbuild
/**
 * `open({ network })`, the library entry point of networking (mod.ts,
 * net/join.ts): two databases in one process converge and close cleanly; a
 * network that cannot start leaves nothing open; aborting leaves the
 * network; `db.close()` hands pending writes to gossip; a process that
 * closed its databases exits by itself; and `open()` without a network
 * never loads libp2p.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Change, createLogger, open, type OpenedDatabase } from "../mod.ts";
import { eventually } from "./_eventually.ts";

const SPACE = "open-network-test";
const logger = createLogger({ level: "silent" });
/** Longer than any test: what crosses after the first sync came by gossip. */
const NO_PERIODIC_SYNC = 3_600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function replica(space: string, bootstrap: readonly string[] = []): Promise<OpenedDatabase> {
  return open({
    storage: "memory",
    network: { space, bootstrap, logger, syncInterval: NO_PERIODIC_SYNC },
  });
}

/** B is connected to A, synced with it, and each is subscribed to the other's gossip. */
async function meshed(a: OpenedDatabase, b: OpenedDatabase): Promise<void> {
  const ready = (x: OpenedDatabase, y: OpenedDatabase) =>
    x.network!.peers().some((p) => p.id === y.network!.peerId && p.gossip && p.sync.asOf !== undefined);
  await eventually("A and B meshed and synced", () => ready(a, b) && ready(b, a));
}

async function tempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const fs = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-open-net-"));
  return { dir, remove: async () => fs.rmSync(dir, { recursive: true, force: true }) };
}

describe("open({ network })", { timeout: 120_000 }, () => {
  it("two databases in one process converge: write on A, read and watch on B", async () => {
    const a = await replica(SPACE);
    let b: OpenedDatabase | undefined;
    try {
      assert.ok(a.network, "db.network is set");
      assert.equal(a.network.space, SPACE);
      assert.match(a.network.peerId, /^12D3KooW/);
      const addrs = a.network.addrs();
      assert.ok(addrs.length > 0, "a server replica listens by default");
      for (const addr of addrs) {
        assert.match(addr, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+/, "loopback TCP by default");
        assert.ok(addr.endsWith(`/p2p/${a.network.peerId}`));
      }
      await a.put("early", { text: "before B existed" });

      b = await replica(SPACE, addrs);
      assert.notEqual(b.network!.peerId, a.network.peerId);
      // Anti-entropy on connect brings what A wrote before.
      assert.deepEqual(await eventually("A's early write on B", () => b!.get("early")), {
        text: "before B existed",
      });
      await meshed(a, b);
      const peer = b.network!.peers().find((p) => p.id === a.network!.peerId)!;
      assert.ok(peer.since <= Date.now());
      assert.ok(peer.sync.asOf! <= Date.now());
      assert.ok(peer.addrs.some((x) => x.startsWith("/ip4/127.0.0.1/tcp/")));

      // Live, by gossip (periodic sync is an hour away): B's watch sees A's write as remote.
      const seen: Change[] = [];
      const unwatch = b.watch({ prefix: "live/" }, (c) => seen.push(c));
      try {
        await a.put("live/1", { text: "hello", n: 1 });
        await eventually("the watch on B", () => seen.length > 0, 10_000);
        assert.deepEqual(seen[0], { soul: "live/1", changes: { text: "hello", n: 1 }, source: "remote" });
      } finally {
        unwatch();
      }
      assert.deepEqual(await b.get("live/1"), { text: "hello", n: 1 });
      // And back: B → A.
      await b.put("live/2", { by: "B" });
      assert.deepEqual(await eventually("B's write on A", () => a.get("live/2"), 10_000), { by: "B" });
      assert.equal(await a.stateHash(), await b.stateHash());

      // close() leaves the network first: A notices B going, B's view of the network is empty.
      await b.close();
      assert.deepEqual(b.network!.peers(), []);
      assert.deepEqual(b.network!.addrs(), []);
      await assert.rejects(b.get("live/1"), /closed/);
      await eventually(
        "A to see B leave",
        () => !a.network!.peers().some((p) => p.id === b!.network!.peerId),
      );
      await b.close(); // idempotent
    } finally {
      await b?.close();
      await a.close();
    }
  });

  it("close() commits queued writes and hands them to gossip before leaving", async () => {
    const space = `${SPACE}-close`;
    const a = await replica(space);
    const b = await replica(space, a.network!.addrs());
    try {
      await meshed(a, b);
      // Not awaited: still queued when close() starts.
      const writes = Array.from({ length: 20 }, (_, i) => a.put(`last/${i}`, { i }));
      await a.close();
      await Promise.all(writes); // every write resolved: committed before storage closed
      // Periodic sync is an hour away and A is gone: only gossip sent before stopping can bring them.
      await eventually("A's last writes on B", async () => (await b.get("last/19"))?.i === 19, 10_000);
      for (let i = 0; i < 20; i++) assert.deepEqual(await b.get(`last/${i}`), { i });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("aborting network.signal leaves the network; the database stays open", async () => {
    const space = `${SPACE}-abort`;
    const a = await replica(space);
    const ac = new AbortController();
    const b = await open({
      storage: "memory",
      network: { space, bootstrap: a.network!.addrs(), logger, signal: ac.signal },
    });
    try {
      await eventually("B connected", () => b.network!.peers().length > 0);
      ac.abort();
      await eventually("A to see B leave", () => a.network!.peers().length === 0);
      assert.deepEqual(b.network!.peers(), []);
      assert.deepEqual(b.network!.addrs(), []);
      await b.put("local", { still: true });
      assert.deepEqual(await b.get("local"), { still: true });
    } finally {
      await b.close();
      await a.close();
    }
  });

  it("a network that cannot start closes the database and rejects with the error", async () => {
    const tmp = await tempDir();
    try {
      const path = `${tmp.dir}/db`;
      // 203.0.113.1 (TEST-NET-3) is no address of this machine: listening there fails after the database opened.
      await assert.rejects(
        open({ path, network: { listen: ["/ip4/203.0.113.1/tcp/0"], logger } }),
        (e: Error) => {
          assert.match(e.message, /^Cannot listen on \/ip4\/203\.0\.113\.1\/tcp\/0/);
          return true;
        },
      );
      // The directory is not left locked: it opens again at once.
      const db = await open({ path });
      await db.put("x", { ok: true });
      await db.close();
    } finally {
      await tmp.remove();
    }
  });

  it("options are checked before anything opens: no directory, no lock", async () => {
    const fs = await import("node:fs");
    const tmp = await tempDir();
    try {
      const path = `${tmp.dir}/db`;
      const bad: [unknown, ErrorConstructor, RegExp][] = [
        [{ replication: 3 }, RangeError, /Sharded replication .* not available yet/],
        [
          { bootstrap: ["/ip4/1.2.3.4/tcp/notaport"] },
          TypeError,
          /network\.bootstrap\[0\] is not a valid multiaddr/,
        ],
        [{ spaces: "x" }, TypeError, /Unknown network option "spaces"/],
        [{ signal: AbortSignal.abort(new Error("gave up")) }, Error, /gave up/],
      ];
      for (const [network, type, message] of bad) {
        await assert.rejects(open({ path, network: network as never }), (e: Error) => {
          assert.ok(e instanceof type, `${JSON.stringify(network)}: ${e.name}`);
          assert.match(e.message, message);
          return true;
        });
        assert.equal(fs.existsSync(path), false, `${JSON.stringify(network)} created nothing`);
      }
    } finally {
      await tmp.remove();
    }
  });

  it("a process that closed its networked databases exits by itself (no timers or sockets left)", async () => {
    const { spawn } = await import("node:child_process");
    const process = (await import("node:process")).default;
    const { fileURLToPath } = await import("node:url");
    const root = fileURLToPath(new URL("..", import.meta.url));
    const args = "Deno" in globalThis
      ? ["run", "-A", "tests/_open_network_child.ts"]
      : ["tests/_open_network_child.ts"];
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout!.setEncoding("utf8").on("data", (s: string) => out += s);
    child.stderr!.setEncoding("utf8").on("data", (s: string) => err += s);
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    // The child converges and closes within seconds; 10 s after closing it counts as hanging.
    let closedAt = 0;
    const watchdog = setInterval(() => {
      if (!closedAt && out.includes("closed\n")) closedAt = Date.now();
      if (closedAt && Date.now() - closedAt > 10_000) child.kill("SIGKILL");
    }, 50);
    const hardStop = setTimeout(() => child.kill("SIGKILL"), 60_000);
    let code: number | null;
    try {
      code = await exited;
    } finally {
      clearInterval(watchdog);
      clearTimeout(hardStop);
    }
    assert.equal(code, 0, `child: exit ${code}; stdout: ${out}; stderr: ${err}`);
    assert.match(out, /^converged\nclosed\n/m);
    // libp2p 3.3 left 1 s timers armed after stop() (net/node.ts releaseTimers): every exit took
    // 0.4-1.0 s, and 10 s where a dial or ping timeout was referenced. Released, it takes 5-20 ms.
    const lingered = Number(out.match(/^exited (\d+) ms after closing$/m)?.[1]);
    assert.ok(lingered < 500, `the child lingered ${lingered} ms after closing; stdout: ${out}`);
    console.log(`child exited ${lingered} ms after closing its databases`);
  });
});

describe("open() without network", () => {
  it("network: false and no network give a local database without db.network", async () => {
    for (const network of [false, undefined] as const) {
      const db = await open({ storage: "memory", network });
      assert.equal(db.network, undefined);
      await db.put("a", { x: 1 });
      await db.close();
      await assert.rejects(db.get("a"), /closed/);
    }
  });

  it("never loads libp2p: mod.ts reaches net/join.ts (and libp2p) only through a dynamic import", async () => {
    const esbuild = await import("esbuild");
    const os = await import("node:os");
    const path = await import("node:path");
    try {
      const result = await esbuild.build({
        entryPoints: ["mod.ts"],
        bundle: true,
        splitting: true,
        format: "esm",
        platform: "browser",
        outdir: path.join(os.tmpdir(), "lattice-open-bundle"),
        write: false,
        metafile: true,
        external: ["node:*", "bun:*"],
        logLevel: "silent",
      });
      const outputs = result.metafile!.outputs;
      const entry = Object.keys(outputs).find((k) => outputs[k].entryPoint === "mod.ts");
      assert.ok(entry, "an output for mod.ts");
      // Everything loaded when mod.ts is imported: its chunk and the chunks it imports statically.
      const loaded = new Set<string>();
      const walk = (chunk: string) => {
        if (loaded.has(chunk)) return;
        loaded.add(chunk);
        for (const imp of outputs[chunk].imports) if (imp.kind === "import-statement") walk(imp.path);
      };
      walk(entry);
      const inputsOf = (chunks: Iterable<string>) =>
        [...chunks].flatMap((c) => Object.keys(outputs[c].inputs));
      const isLibp2p = (input: string) => /node_modules\/(libp2p|@libp2p|@chainsafe)\//.test(input);
      const eager = inputsOf(loaded);
      assert.ok(eager.includes("mod.ts") && eager.includes("net/network_options.ts"));
      assert.deepEqual(eager.filter(isLibp2p), [], "libp2p modules loaded by a plain import of mod.ts");
      assert.ok(!eager.includes("net/join.ts") && !eager.includes("net/network.ts"));
      // The check can fail: libp2p is in the bundle, behind the dynamic import.
      const lazy = inputsOf(Object.keys(outputs).filter((c) => !loaded.has(c)));
      assert.ok(lazy.includes("net/join.ts"), "net/join.ts in a lazily loaded chunk");
      assert.ok(lazy.some(isLibp2p), "libp2p in a lazily loaded chunk");
    } finally {
      await esbuild.stop();
    }
  });
});
