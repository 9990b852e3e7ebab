/** net/backoff.ts: the capped, jittered exponential backoff shared by the node's redials and the client's watch. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay } from "../net/backoff.ts";
import { systemWorld, type World } from "../core/world.ts";

/** The system world with every random byte set to `byte`: 0 gives the lowest delay, 0xff the highest. */
const fixedRandom = (byte: number): World => ({ ...systemWorld, randomBytes: (b) => b.fill(byte) });

describe("backoffDelay", () => {
  const b = { initial: 250, max: 30_000 };

  it("doubles per attempt between d/2 and d, and stops at the cap", () => {
    const low = fixedRandom(0), high = fixedRandom(0xff);
    assert.deepEqual([0, 1, 2, 3].map((n) => backoffDelay(b, n, low)), [125, 250, 500, 1000]);
    for (const n of [0, 1, 2, 3]) {
      const d = 250 * 2 ** n;
      const hi = backoffDelay(b, n, high);
      assert.ok(hi < d && hi > d * 0.999, `attempt ${n}: ${hi}`);
    }
    assert.equal(backoffDelay(b, 20, low), 15_000);
    assert.ok(backoffDelay(b, 1e9, high) <= 30_000); // huge attempts neither overflow nor exceed the cap
  });

  it("takes its randomness from the world it is given", () => {
    let calls = 0;
    const world: World = { ...systemWorld, randomBytes: (bytes) => (calls++, bytes.fill(0x80)) };
    assert.equal(backoffDelay(b, 2, world), 500 + 500 * (0x80808080 / 2 ** 32));
    assert.equal(calls, 1);
  });

  it("spreads delays with the system world", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(b, 4);
      assert.ok(d >= 2000 && d <= 4000, String(d));
      seen.add(d);
    }
    assert.ok(seen.size > 40, `${seen.size} distinct delays of 50`);
  });
});
