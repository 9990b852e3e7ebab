/**
 * The `network`, `identity` and `logger` options of `open()`: bad values reject with a
 * clear `TypeError`/`RangeError` before anything starts, on every runtime
 * (in Chromium too: a page gets the same errors, plus one for `listen`,
 * since a browser cannot listen).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLogger, open, systemWorld, type World } from "../mod.ts";
import { checkNetworkOptions } from "../net/network_options.ts";

const isBrowser = !("Deno" in globalThis) && !("Bun" in globalThis) &&
  typeof (globalThis as { document?: unknown }).document === "object";

const BAD: [string, unknown, ErrorConstructor, RegExp][] = [
  ["a string", "yes", TypeError, /network must be false or an options object, got "yes"/],
  ["true", true, TypeError, /network must be false or an options object, got boolean true/],
  ["an array", [], TypeError, /got an array/],
  ["an unknown key", { bootstraps: [] }, TypeError, /Unknown network option "bootstraps"/],
  [
    "sharded replication",
    { replication: 3 },
    RangeError,
    /Sharded replication \(replication: 3\) is not available yet/,
  ],
  ["sharded by name", { replication: "sharded" }, RangeError, /Sharded replication .* not available yet/],
  ["a bad replication", { replication: true }, TypeError, /network\.replication must be "full"/],
  ["an empty space", { space: "" }, TypeError, /network\.space must be a non-empty string/],
  ["a numeric space", { space: 7 }, TypeError, /network\.space must be a non-empty string/],
  ["listen not an array", { listen: "/ip4/127.0.0.1/tcp/0" }, TypeError, /network\.listen must be an array/],
  [
    "a bootstrap that is no multiaddr",
    { bootstrap: ["127.0.0.1:4001"] },
    TypeError,
    /network\.bootstrap\[0\]/,
  ],
  ["a malformed multiaddr", { bootstrap: ["/ip4/300.1.1.1/tcp/1"] }, TypeError, /not a valid multiaddr/],
  ["allowPrivateAddresses not a boolean", { allowPrivateAddresses: "yes" }, TypeError, /must be a boolean/],
  ["syncInterval 0", { syncInterval: 0 }, RangeError, /network\.syncInterval must be from 1/],
  ["syncInterval too long", { syncInterval: 2 ** 31 }, RangeError, /network\.syncInterval must be from 1/],
  ["syncInterval NaN", { syncInterval: NaN }, RangeError, /network\.syncInterval must be from 1/],
  ["syncInterval a string", { syncInterval: "1s" }, TypeError, /network\.syncInterval must be a number/],
  ["a signal that is not one", { signal: {} }, TypeError, /network\.signal must be an AbortSignal/],
  ["a logger without methods", { logger: {} }, TypeError, /network\.logger must have/],
];

describe("open() option checks", () => {
  for (const [what, network, type, message] of BAD) {
    it(`rejects ${what}`, async () => {
      await assert.rejects(open({ storage: "memory", network: network as never }), (e: Error) => {
        assert.ok(e instanceof type, `expected ${type.name}, got ${e.name}: ${e.message}`);
        assert.match(e.message, message);
        return true;
      });
    });
  }

  it("rejects an identity that is not one, before opening", async () => {
    await assert.rejects(
      open({ storage: "memory", identity: { key: "x" } as never }),
      (e: Error) => e instanceof TypeError && /not an exported identity/.test(e.message),
    );
    await assert.rejects(
      open({ storage: "memory", identity: "{" }),
      (e: Error) => e instanceof TypeError && /exported identity is JSON/.test(e.message),
    );
  });

  it("rejects a space that is empty or not network.space", async () => {
    await assert.rejects(open({ storage: "memory", space: "" }), TypeError);
    await assert.rejects(
      open({ storage: "memory", space: "a", network: { space: "b" } }),
      (e: Error) => e instanceof RangeError && /is not network.space/.test(e.message),
    );
  });

  it("rejects a passphrase that is not a string", async () => {
    await assert.rejects(
      open({ storage: "memory", passphrase: 42 as never }),
      (e: Error) => e instanceof TypeError && /passphrase must be a string/.test(e.message),
    );
  });

  it("rejects a logger without the four methods, and takes one that has them", async () => {
    for (const logger of [null, "warn", { warn() {} }]) {
      await assert.rejects(
        open({ logger: logger as never }),
        (e: Error) =>
          e instanceof TypeError && /logger must have debug, info, warn and error/.test(e.message),
      );
    }
    const lines: string[] = [];
    const logger = createLogger({ write: (line) => lines.push(line) });
    const db = await open({ storage: "memory", logger });
    await db.close();
    assert.deepEqual(lines, [], "a memory database has nothing to warn of");
  });

  it("rejects with the reason of an already aborted signal, before opening", async () => {
    const reason = new Error("no longer wanted");
    await assert.rejects(
      open({ storage: "memory", network: { signal: AbortSignal.abort(reason) } }),
      (e) => e === reason,
    );
  });

  it(isBrowser ? "rejects listen in a browser" : "accepts listen on a server", async () => {
    const network = { listen: ["/ip4/127.0.0.1/tcp/0"], replication: "full" as const };
    if (isBrowser) {
      await assert.rejects(open({ storage: "memory", network }), (e: Error) => {
        assert.ok(e instanceof RangeError);
        assert.match(e.message, /network\.listen must be empty in a browser/);
        return true;
      });
    } else {
      assert.deepEqual(checkNetworkOptions(network), {
        listen: ["/ip4/127.0.0.1/tcp/0"],
        bootstrap: [],
        space: "default",
        allowPrivateAddresses: false,
        mdns: false,
      });
    }
  });

  it("fills in defaults: no listen, no bootstrap, space default, full replication", () => {
    assert.equal(checkNetworkOptions(undefined), undefined);
    assert.equal(checkNetworkOptions(false), undefined);
    assert.deepEqual(checkNetworkOptions({}), {
      listen: [],
      bootstrap: [],
      space: "default",
      allowPrivateAddresses: false,
      mdns: false,
    });
  });
});

describe("open({ world })", () => {
  it("takes the database's clock and its new actor id from the world it is given", async () => {
    const world: World = {
      ...systemWorld,
      now: () => Date.UTC(2030, 0, 1),
      randomBytes: (b: Uint8Array) => b.fill(0xab),
    };
    const db = await open({ storage: "memory", world });
    try {
      assert.equal(db.actor, "2bababababababab"); // 0xab bytes, the top bit cleared (a keyless actor)
      const { state } = await db.put("x", { v: 1 });
      // The state's 48-bit ms is the world's now (or just after it), not the machine's.
      assert.equal(Math.floor(parseInt(state.slice(0, 12), 16) / 1000), Date.UTC(2030, 0, 1) / 1000);
    } finally {
      await db.close();
    }
  });
});
