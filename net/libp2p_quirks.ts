/**
 * Workarounds for behaviours of libp2p 3.3 and of the runtimes under it that
 * would hang a stop or keep a process alive after its last node stopped.
 * Each says what it fixes and how it was measured; each is applied once per
 * process ({@link applyRuntimeShims}) or around one `libp2p.stop()`
 * ({@link releaseTimers}). These touch libp2p's real timers, not a
 * simulation's: libp2p's internals keep their own clock (core/world.ts).
 *
 * @module
 */
import { systemWorld, type Timer } from "../core/world.ts";
import type { RuntimeName } from "../runtime/detect.ts";

/** Patches what `runtime` needs before a libp2p node starts (Bun and Deno; nothing elsewhere). */
export async function applyRuntimeShims(runtime: RuntimeName): Promise<void> {
  if (runtime === "bun") await shimBun();
  if (runtime === "deno") shimDeno();
}

let bunShimmed = false;

/**
 * Two Bun quirks, patched once per process:
 * - `http.Server.close()` on a server that never listened never emits
 *   `close`; the WebSockets listener feeds sockets to such a server and awaits
 *   that event on stop, so `libp2p.stop()` would hang.
 * - `net.connect({ signal })` emits an `AbortError` on abort even after the
 *   caller removed its `error` listener and destroyed the socket, which
 *   crashes the process. `@libp2p/tcp` passes the dial signal through and
 *   handles aborts itself, so the shim drops `signal` before Bun sees it.
 */
async function shimBun(): Promise<void> {
  if (bunShimmed) return;
  bunShimmed = true;
  const http = await import("node:http");
  type Closable = { listening: boolean; emit(ev: string): void };
  const proto = http.Server.prototype as unknown as { close: (this: Closable, cb?: unknown) => unknown };
  const close = proto.close;
  proto.close = function (this: Closable, cb?: unknown) {
    const listening = this.listening;
    const r = close.call(this, cb);
    if (!listening) queueMicrotask(() => this.emit("close"));
    return r;
  };
  const net = (await import("node:net")).default as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ["connect", "createConnection"]) {
    const original = net[name];
    net[name] = function (this: unknown, ...args: unknown[]) {
      const o = args[0];
      if (typeof o === "object" && o !== null && "signal" in o) {
        const { signal: _signal, ...rest } = o as Record<string, unknown>;
        args[0] = rest;
      }
      return original.apply(this, args);
    };
  }
}

let denoShimmed = false;

/**
 * Two Deno behaviours that keep a process alive after every node stopped:
 * - libp2p's peer store locks (mortice) open one process-wide
 *   BroadcastChannel and call `unref?.()` on it; Deno's BroadcastChannel has
 *   no `unref`, so the process would never exit. Deno has an internal ref
 *   switch: expose it as `unref`.
 * - Deno keeps an `AbortSignal.timeout` timer referenced once the signal has
 *   a listener, and libp2p arms many (dial 5–10 s, stream negotiation, close),
 *   so the process lingered ~10 s after `stop()`. Node and Bun never hold the
 *   process for these timers; the shim gives Deno the same behaviour.
 */
function shimDeno(): void {
  if (denoShimmed) return;
  denoShimmed = true;
  const deno = (globalThis as unknown as { Deno: { unrefTimer?(id: number): void } }).Deno;
  const proto = globalThis.BroadcastChannel?.prototype as unknown as Record<PropertyKey, unknown> | undefined;
  if (proto && typeof proto.unref !== "function") {
    const ref = Object.getOwnPropertySymbols(proto).find((s) => s.description === "refBroadcastChannel");
    if (ref && typeof proto[ref] === "function") {
      proto.unref = function (this: Record<PropertyKey, (on: boolean) => void>) {
        this[ref](false);
      };
    }
  }
  if (typeof deno.unrefTimer === "function") {
    AbortSignal.timeout = (ms: number): AbortSignal => {
      const ac = new AbortController();
      systemWorld.setTimer(
        () => ac.abort(new DOMException("The operation timed out.", "TimeoutError")),
        ms,
        true,
      );
      return ac.signal;
    };
  }
}

/**
 * Timers libp2p 3.3 leaves armed after `stop()`, each of which kept the process
 * alive for up to a second after its last node stopped (measured: exit 1.0 s
 * after `close()`, 0.4 s with the first fixed). Optional chaining throughout:
 * if a libp2p upgrade renames these, the process lingers again and the exit
 * test in tests/open_network.test.ts fails.
 * - The address manager answers the `transport:close` each transport emits
 *   during stop with a peer-store update debounced by 1 s, never cancelled.
 * - gossipsub's `stop()` replaces its status object without clearing the
 *   next heartbeat's timeout it holds (up to one heartbeat interval, 1 s).
 * - The inbound-connection rate limiter keeps a 1 s expiry timer per remote
 *   host; it calls `unref()` on it, which Deno's numeric timer ids lack.
 * Call {@link releaseTimers} before `libp2p.stop()`; it finishes after.
 */
export function releaseTimers(libp2p: unknown): () => void {
  type Internals = {
    components?: {
      addressManager?: { _updatePeerStoreAddresses?: { stop?(): void } };
      connectionManager?: {
        inboundConnectionRateLimiter?: { memoryStorage?: { storage?: Map<string, { timeoutId?: unknown }> } };
      };
    };
    services?: { pubsub?: { stop(): Promise<void>; status?: { heartbeatTimeout?: unknown } } };
  };
  const node = libp2p as Internals;
  const pubsub = node.services?.pubsub;
  let heartbeat: unknown;
  if (pubsub && typeof pubsub.stop === "function") {
    const stop = pubsub.stop;
    // The status is replaced synchronously at the start of its stop(): read the timeout just before.
    pubsub.stop = function (this: typeof pubsub) {
      heartbeat = this.status?.heartbeatTimeout;
      return stop.call(this);
    };
  }
  return () => {
    if (heartbeat !== undefined) systemWorld.clearTimer(heartbeat as Timer);
    node.components?.addressManager?._updatePeerStoreAddresses?.stop?.();
    const limits = node.components?.connectionManager?.inboundConnectionRateLimiter?.memoryStorage?.storage;
    if (limits instanceof Map) {
      for (const record of limits.values()) systemWorld.clearTimer(record?.timeoutId as Timer | undefined);
      limits.clear();
    }
  };
}
