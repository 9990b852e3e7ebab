/**
 * net/members.ts: the redials of members and bootstrap addresses, on a world
 * of virtual time and a dialer that fails while "offline". Checked: failed
 * redials wait longer and longer; `online()` dials at once every member that
 * is being redialed (waiting for its timer, or with a dial in flight) and
 * every bootstrap address not yet reached, cancels their pending timers and
 * starts their backoffs over; a connected member, and one only remembered
 * (never lost), are left alone.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Connection, PeerId } from "@libp2p/interface";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import type { Multiaddr } from "@multiformats/multiaddr";
import { type Dialer, Members } from "../net/members.ts";
import { TimerSet } from "../net/timer_set.ts";
import { systemWorld, type Timer, type World } from "../core/world.ts";

/** A world whose timers fire only when {@link advance} passes them; randomness fixed to the longest delays. */
function virtualWorld() {
  let now = 0, next = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const world: World = {
    ...systemWorld,
    now: () => now,
    monotonic: () => now,
    setTimer: (fn, ms) => {
      const id = next++;
      timers.set(id, { at: now + ms, fn });
      return id as Timer;
    },
    clearTimer: (t) => void timers.delete(t as number),
    randomBytes: (b) => b.fill(0xff),
  };
  /** Runs the timers due within `ms`, in order, letting promises settle after each. */
  async function advance(ms: number): Promise<void> {
    const end = now + ms;
    for (;;) {
      await new Promise((r) => setTimeout(r, 0));
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of timers) if (e[1].at <= end && (!first || e[1].at < first[1].at)) first = e;
      if (!first) break;
      timers.delete(first[0]);
      now = first[1].at;
      first[1].fn();
    }
    now = end;
  }
  return { world, advance };
}

/** A dialer that refuses every dial while `offline` (or leaves it hanging while `hang`), and counts them by target. */
function fakeDialer(connected: Set<string>) {
  const state = { offline: true, hang: false, dials: [] as string[] };
  const dialer: Dialer = {
    dial(target: PeerId | Multiaddr): Promise<Connection> {
      const name = target.toString();
      state.dials.push(name);
      if (state.hang) return new Promise(() => {});
      if (state.offline) return Promise.reject(new Error("offline"));
      return Promise.resolve({ remotePeer: { toString: () => "server" } } as unknown as Connection);
    },
    getConnections: (peer?: PeerId) => connected.has(String(peer)) ? [{} as Connection] : [],
  };
  return { dialer, state };
}

const peerId = async () => peerIdFromPrivateKey(await generateKeyPair("Ed25519")).toString();

/** The Members options of every case but its world, timers and life. */
const OPTIONS = { backoff: { initial: 250, max: 30_000 }, maxMembers: 8, self: "me", log: () => {} };

describe("Members", () => {
  it("redials with a growing backoff, and at once when online() says the network is back", async () => {
    const { world, advance } = virtualWorld();
    const timers = new TimerSet(world);
    const life = new AbortController();
    const connected = new Set<string>();
    const { dialer, state } = fakeDialer(connected);
    const [gone, here, idle] = [await peerId(), await peerId(), await peerId()];
    const members = new Members(dialer, { world, timers, life: life.signal, ...OPTIONS });
    members.remember(gone);
    members.remember(here);
    members.remember(idle); // found, never connected nor lost: not ours to dial here
    connected.add(here);
    const addr = "/ip4/127.0.0.1/tcp/9/ws/p2p/" + gone;
    members.bootstrap([addr]);
    members.scheduleReconnect(gone); // `gone` disconnected

    // Offline for a minute: each failed redial waits longer (250, 500, 1000, … ms, up to 30 s).
    await advance(60_000);
    const redials = state.dials.filter((d) => d === gone).length;
    assert.ok(redials >= 5 && redials <= 9, `${redials} redials in a minute`);
    const bootstrapDials = state.dials.filter((d) => d === addr).length;
    assert.ok(bootstrapDials >= 5 && bootstrapDials <= 9, `${bootstrapDials} bootstrap dials in a minute`);

    // Back online: both are dialed now, not after the grown delay, and the connected member is not.
    state.offline = false;
    state.dials.length = 0;
    assert.equal(members.online(), 2);
    assert.deepEqual(state.dials.sort(), [addr, gone].sort());
    await advance(0);
    // The bootstrap address was reached (no more dials of it); `gone` answered too and stays quiet.
    connected.add(gone);
    members.connected(gone);
    state.dials.length = 0;
    await advance(60_000);
    assert.deepEqual(state.dials, []);
    assert.equal(members.online(), 0, "nothing waits for a redial");
    timers.stop();
    life.abort();
  });

  it("starts the backoff over: a redial that fails after online() waits the first delay again", async () => {
    const { world, advance } = virtualWorld();
    const timers = new TimerSet(world);
    const life = new AbortController();
    const { dialer, state } = fakeDialer(new Set());
    const peer = await peerId();
    const members = new Members(dialer, { world, timers, life: life.signal, ...OPTIONS });
    members.remember(peer);
    members.scheduleReconnect(peer);
    await advance(120_000); // the delay is at its 30 s cap by now
    state.dials.length = 0;
    assert.equal(members.online(), 1); // still offline: this dial fails too
    await advance(249);
    assert.equal(state.dials.length, 1, "the online() dial only");
    await advance(1); // the first delay (at most 250 ms), not 30 s
    assert.equal(state.dials.length, 2);
    timers.stop();
    life.abort();
    assert.equal(members.online(), 0, "a stopped node dials nothing");
  });

  it("dials at online() a member whose redial, started while offline, is still in flight", async () => {
    const { world, advance } = virtualWorld();
    const timers = new TimerSet(world);
    const life = new AbortController();
    const { dialer, state } = fakeDialer(new Set());
    const peer = await peerId();
    const members = new Members(dialer, { world, timers, life: life.signal, ...OPTIONS });
    members.remember(peer);
    members.scheduleReconnect(peer);
    state.hang = true; // the redial below never answers (a dial cut off mid-way)
    await advance(250);
    assert.equal(state.dials.length, 1, "the redial is in flight, no timer waits");
    state.hang = false;
    state.offline = false;
    assert.equal(members.online(), 1);
    assert.equal(state.dials.length, 2);
    timers.stop();
    life.abort();
  });
});
