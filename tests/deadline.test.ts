/** net/deadline.ts: one time limit for network-bound calls, on a World's timers, released when the call settles. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { withDeadline } from "../net/deadline.ts";
import { systemWorld, type Timer, type World } from "../core/world.ts";

/** A world whose timers fire only when the test says so. */
function manualWorld() {
  const timers = new Map<number, { fn: () => void; ms: number; unref?: boolean }>();
  let next = 1;
  const world: World = {
    ...systemWorld,
    setTimer(fn, ms, unref) {
      timers.set(next, { fn, ms, unref });
      return next++ as Timer;
    },
    clearTimer(t) {
      timers.delete(t as number);
    },
  };
  const fire = () => {
    for (const [id, t] of [...timers]) {
      timers.delete(id);
      t.fn();
    }
  };
  return { world, timers, fire };
}

describe("withDeadline", () => {
  it("passes the result through and clears its timer", async () => {
    const { world, timers } = manualWorld();
    let armed = 0;
    const r = await withDeadline(5_000, (signal) => {
      armed = timers.size;
      assert.equal(signal.aborted, false);
      return Promise.resolve(7);
    }, { world });
    assert.equal(r, 7);
    assert.equal(armed, 1);
    assert.equal(timers.size, 0);
  });

  it("aborts the signal with a TimeoutError when the world's timer fires", async () => {
    const { world, timers, fire } = manualWorld();
    const p = withDeadline(
      1_234,
      (signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
      { world },
    );
    assert.equal([...timers.values()][0].ms, 1_234);
    fire();
    await assert.rejects(
      p,
      (e: Error) => e.name === "TimeoutError" && e.message === "Timed out after 1234 ms",
    );
  });

  it("takes the reason and unref from its options", async () => {
    const { world, timers, fire } = manualWorld();
    const p = withDeadline(
      10,
      (signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
      {
        world,
        unref: true,
        reason: () => new Error("sync session timed out"),
      },
    );
    assert.equal([...timers.values()][0].unref, true);
    fire();
    await assert.rejects(p, /sync session timed out/);
  });

  it("follows its parent signals and removes its listeners from them", async () => {
    const { world, timers } = manualWorld();
    const parent = new AbortController();
    const removed: string[] = [];
    const remove = parent.signal.removeEventListener.bind(parent.signal) as (t: string, l: unknown) => void;
    (parent.signal as { removeEventListener: unknown }).removeEventListener = (type: string, l: unknown) => {
      removed.push(type);
      remove(type, l);
    };
    const p = withDeadline(
      60_000,
      (signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
      {
        world,
        signals: [undefined, parent.signal],
      },
    );
    parent.abort(new Error("stopped"));
    await assert.rejects(p, /stopped/);
    assert.deepEqual(removed, ["abort"]);
    assert.equal(timers.size, 0);
    // An already aborted parent aborts the signal before the call starts.
    await assert.rejects(
      withDeadline(60_000, (signal) => signal.aborted ? Promise.reject(signal.reason) : Promise.resolve(1), {
        world,
        signals: [parent.signal],
      }),
      /stopped/,
    );
  });

  it("works on the system world", async () => {
    assert.equal(await withDeadline(1_000, () => Promise.resolve("ok")), "ok");
  });
});
