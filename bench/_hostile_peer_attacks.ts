/**
 * The peer-to-peer attacks of the `hostile` bench: through the victim's
 * libp2p address, with the attacker's own node (bench/_hostile_kit.ts).
 *
 * @module
 */
import { constants as zlibConstants, deflateRawSync } from "node:zlib";
import type { Stream } from "@libp2p/interface";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { formatHlc } from "../core/clock.ts";
import { encodeOps, type Op } from "../core/op.ts";
import { SYNC_PROTOCOL } from "../core/sync/protocol.ts";
import { DHT_PROTOCOL } from "../net/node.ts";
import { createIdentity } from "../core/trust/identity.ts";
import { multiaddr } from "@multiformats/multiaddr";
import {
  ANSWER_TIMEOUT_MS,
  type Attack,
  concat,
  FAR_FUTURE_MS,
  framed,
  frameReader,
  type HostileSizes,
  MiB,
  plantFrames,
  plantThroughSync,
  randomHex64,
  secs,
  sleep,
  startAttacker,
  varint,
  waitForEnd,
  waitForNode,
  write,
} from "./_hostile_kit.ts";

/**
 * Raw DEFLATE of `inflated` zero bytes, built from one compressed 16 MiB
 * segment (ended by a full flush, so it is byte-aligned and refers to
 * nothing before it) repeated, then an empty final block.
 */
export function deflateBomb(inflated: number): Uint8Array {
  const SEGMENT = 16 * 1024 * 1024;
  const n = Math.max(1, Math.round(inflated / SEGMENT));
  const seg = deflateRawSync(new Uint8Array(Math.min(SEGMENT, inflated)), {
    level: 9,
    finishFlush: zlibConstants.Z_FULL_FLUSH,
  });
  const parts: Uint8Array[] = Array(n).fill(seg);
  parts.push(Uint8Array.of(3, 0)); // a final, empty fixed-Huffman block
  return concat(parts);
}

export function syncDeflateBomb(sizes: HostileSizes): Attack {
  let frame: Uint8Array | undefined;
  return {
    name: "sync deflate bomb",
    what: `one sync frame of deflate-raw zeros inflating to ${MiB(sizes.bombInflatedBytes)}`,
    // Outside the measured phases (see deferredFlood): the bomb is built, and a first attacker node
    // started and stopped, since the first libp2p start in this process blocks the loop timing the
    // honest writes.
    async prepare(ctx) {
      frame = concat([Uint8Array.of(1), deflateBomb(sizes.bombInflatedBytes)]); // flag 1: deflate-raw
      await (await startAttacker(ctx.victim)).stop();
    },
    async run(ctx) {
      if (frame === undefined) throw new Error("prepare did not run");
      const attacker = await startAttacker(ctx.victim);
      try {
        const stream = await attacker.stream(SYNC_PROTOCOL);
        const t0 = performance.now();
        const bytes = framed(frame);
        for (let i = 0; i < bytes.length; i += 65536) await write(stream, bytes.subarray(i, i + 65536));
        const ended = await waitForEnd(stream, 60_000);
        stream.abort(new Error("done"));
        return `${(frame.length / 1024).toFixed(0)} KiB frame; victim ` +
          (ended === undefined
            ? "kept the stream open for 60 s"
            : `closed it after ${secs(performance.now() - t0)}`);
      } catch (e) {
        return `refused: ${(e as Error).message}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

export function deferredFlood(sizes: HostileSizes): Attack {
  const actor = randomHex64();
  const make = (i: number): Op => ({
    soul: `future/${i}`,
    field: "v",
    value: i,
    state: formatHlc(FAR_FUTURE_MS, i & 0xffff),
    actor,
  });
  let frames: Uint8Array[] | undefined;
  return {
    name: "deferred-op flood",
    what: `${sizes.deferredRows} ops stamped in year 10889 through sync, then ${sizes.deferredSting} ` +
      "gossip messages of one such op, each followed by a live marker and sent once the last marker showed",
    // Outside the measured phases, as the attacker's work runs in the event loop that times the honest
    // writes: the frames are built, and a first attacker node started and stopped (the first libp2p
    // start in this process blocked that loop for ~130 ms, measured as the victim's latency).
    async prepare(ctx) {
      frames = await plantFrames(sizes.deferredRows, make, "future-marker/1");
      await (await startAttacker(ctx.victim)).stop();
    },
    async run(ctx) {
      const planted = await plantThroughSync(ctx, sizes.deferredRows, make, "future-marker/1", frames);
      const attacker = await startAttacker(ctx.victim);
      const took: string[] = [];
      try {
        // Each sting: a message of one far-future op, then one of a live marker, which shows once both were taken.
        for (let i = 0; i < sizes.deferredSting; i++) {
          const t0 = performance.now();
          const marker = `future-marker/sting${i}`;
          const future = {
            soul: `future/sting${i}`,
            field: "v",
            value: i,
            state: formatHlc(FAR_FUTURE_MS, 0),
          };
          await attacker.publish(encodeOps([{ ...future, actor }]));
          await attacker.publish(
            encodeOps([{ soul: marker, field: "v", value: i, state: formatHlc(Date.now(), 0), actor }]),
          );
          if (!await waitForNode(ctx.victim, marker, ANSWER_TIMEOUT_MS / 2)) {
            took.push("not absorbed in 60 s");
            break;
          }
          took.push(secs(performance.now() - t0));
        }
        return `planting: ${planted}; gossip stings absorbed after ${took.join(", ")}`;
      } catch (e) {
        return `planting: ${planted}; stings after ${took.join(", ")} refused: ${(e as Error).message}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

export function slowFrames(sizes: HostileSizes): Attack {
  return {
    name: "slow frames",
    what: `one ${MiB(sizes.slowFrameBytes)} sync frame written ${sizes.slowChunkBytes} bytes at a time`,
    async run(ctx) {
      const attacker = await startAttacker(ctx.victim);
      const t0 = performance.now();
      let sent = 0;
      try {
        const stream = await attacker.stream(SYNC_PROTOCOL);
        await write(stream, varint(sizes.slowFrameBytes));
        const chunk = new Uint8Array(sizes.slowChunkBytes).fill(0x41);
        try {
          while (sent < sizes.slowFrameBytes && performance.now() - t0 < 4 * ANSWER_TIMEOUT_MS) {
            await write(stream, chunk.subarray(0, Math.min(chunk.length, sizes.slowFrameBytes - sent)));
            sent += chunk.length;
          }
        } catch (e) {
          return `victim closed the stream after ${sent} bytes, ${secs(performance.now() - t0)}: ` +
            (e as Error).message;
        }
        const ended = await waitForEnd(stream, 30_000);
        stream.abort(new Error("done"));
        return `${sent} bytes in ${secs(performance.now() - t0)}; victim ` +
          (ended === undefined ? "kept the stream open" : "closed the stream");
      } catch (e) {
        return `refused after ${sent} bytes: ${(e as Error).message}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

export function gossipGarbage(sizes: HostileSizes): Attack {
  return {
    name: "gossip garbage",
    what: `${sizes.gossipMessages} gossip messages of ${sizes.gossipBytes / 1024} KiB random bytes, 200/s`,
    async run(ctx) {
      const attacker = await startAttacker(ctx.victim);
      const t0 = performance.now();
      let sent = 0;
      try {
        for (; sent < sizes.gossipMessages; sent++) {
          const bytes = new Uint8Array(sizes.gossipBytes);
          for (let k = 0; k < bytes.length; k += 65536) crypto.getRandomValues(bytes.subarray(k, k + 65536));
          await attacker.publish(bytes);
          if (sent % 20 === 19) await sleep(Math.max(0, (sent + 1) * 5 - (performance.now() - t0)));
        }
        await sleep(1000);
        const still = attacker.libp2p.getConnections().length > 0;
        return `${sent} messages in ${secs(performance.now() - t0)}; ` +
          (still ? "still connected" : "disconnected by the victim");
      } catch (e) {
        return `stopped after ${sent} messages: ${(e as Error).message}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

/**
 * Gossip messages of ops that claim a key's actor id with signatures that do
 * not hold (issue 16): each op its own random signature, so the victim pays
 * one Ed25519 verification per op before it refuses the message. After
 * {@link TRUST_OFFENCES} such messages the victim cuts the attacker off;
 * it keeps redialing and publishing for the whole phase.
 */
export function forgedSignatures(sizes: HostileSizes): Attack {
  return {
    name: "forged signatures",
    what:
      `${sizes.gossipMessages} gossip messages of 200 ops with bad signatures under a key's actor id, 200/s`,
    async run(ctx) {
      const key = await createIdentity();
      const attacker = await startAttacker(ctx.victim);
      const t0 = performance.now();
      let sent = 0, refusedAt = -1;
      try {
        // As long as the garbage attack takes (200/s), refused or not: a refused publish waits for its redial.
        const until = t0 + sizes.gossipMessages * 5 + 1000;
        for (; sent < sizes.gossipMessages && performance.now() < until; sent++) {
          const ops: Op[] = [];
          for (let i = 0; i < 200; i++) {
            const sig = new Uint8Array(101);
            sig[0] = 1, sig.set(key.publicKey, 1), crypto.getRandomValues(sig.subarray(33, 97)), sig[98] = 1;
            ops.push({
              soul: `forged/${sent}/${i}`,
              field: "v",
              value: i,
              state: formatHlc(Date.now(), 0),
              actor: key.actor,
              sig,
            });
          }
          const bytes = encodeOps(ops);
          if (refusedAt < 0 && sent > 0 && attacker.libp2p.getConnections().length === 0) refusedAt = sent;
          if (refusedAt >= 0) {
            // Refused: redial now and then, as an attacker would, and publish if it gets in.
            const back = await attacker.libp2p.dial(multiaddr(ctx.victim.addr), {
              signal: AbortSignal.timeout(1000),
            })
              .then(() => true, () => false);
            if (back) await attacker.libp2p.services.pubsub.publish(attacker.topic, bytes).catch(() => {});
            await sleep(200);
            continue;
          }
          try {
            await attacker.publish(bytes);
          } catch {
            refusedAt = sent;
          }
          if (sent % 20 === 19) await sleep(Math.max(0, (sent + 1) * 5 - (performance.now() - t0)));
        }
        const still = attacker.libp2p.getConnections().length > 0;
        return `${sent} messages in ${secs(performance.now() - t0)}; ` +
          (refusedAt >= 0 ? `refused from message ${refusedAt}` : still ? "still connected" : "disconnected");
      } finally {
        await attacker.stop();
      }
    },
  };
}

/** Protobuf: a length-delimited field. */
function pbBytes(field: number, bytes: Uint8Array): Uint8Array {
  return concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
}

/** Protobuf: a varint field. */
function pbVarint(field: number, n: number): Uint8Array {
  return concat([varint(field << 3), varint(n)]);
}

const DHT_PUT_VALUE = 0, DHT_ADD_PROVIDER = 2;

export function dhtRecordFlood(sizes: HostileSizes): Attack {
  return {
    name: "DHT record flood",
    what: `${sizes.dhtRecords} PUT_VALUE of ${sizes.dhtRecordBytes / 1024} KiB /lattice/ records, ` +
      `${sizes.dhtProviders} ADD_PROVIDER`,
    async run(ctx) {
      const attacker = await startAttacker(ctx.victim);
      const utf8 = new TextEncoder();
      let stored = 0, refused = 0, providers = 0;
      const t0 = performance.now();
      try {
        let stream: Stream | undefined, reader: ReturnType<typeof frameReader> | undefined;
        const value = new Uint8Array(sizes.dhtRecordBytes);
        for (let i = 0; i < sizes.dhtRecords && refused < 20; i++) {
          try {
            if (!stream) {
              stream = await attacker.stream(DHT_PROTOCOL);
              reader = frameReader(stream);
            }
            crypto.getRandomValues(value.subarray(0, 64));
            const key = utf8.encode(`/lattice/junk-${i}-${randomHex64()}`);
            const record = concat([pbBytes(1, key), pbBytes(2, value), pbBytes(5, utf8.encode(rfc3339()))]);
            await write(
              stream,
              framed(concat([pbVarint(1, DHT_PUT_VALUE), pbBytes(2, key), pbBytes(3, record)])),
            );
            if (await reader!.next(10_000)) stored++;
            else throw new Error("no answer");
          } catch {
            refused++;
            stream?.abort(new Error("refused"));
            stream = undefined;
          }
        }
        stream?.abort(new Error("done"));
        const me = attacker.libp2p.peerId.toMultihash().bytes;
        const addrs = attacker.libp2p.getMultiaddrs().map((a) => a.bytes);
        const peer = concat([pbBytes(1, me), ...addrs.map((a) => pbBytes(2, a))]);
        try {
          const s = await attacker.stream(DHT_PROTOCOL);
          for (; providers < sizes.dhtProviders; providers++) {
            const cid = CID.createV1(0x55, await sha256.digest(crypto.getRandomValues(new Uint8Array(32))));
            await write(
              s,
              framed(concat([pbVarint(1, DHT_ADD_PROVIDER), pbBytes(2, cid.bytes), pbBytes(9, peer)])),
            );
          }
          await sleep(1000); // ADD_PROVIDER has no answer: give the victim time to take them in
          s.abort(new Error("done"));
        } catch {
          // refused: counted by `providers`
        }
        return `${stored} records answered, ${refused} refused; ${providers} ADD_PROVIDER sent ` +
          `in ${secs(performance.now() - t0)}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

/** Now as RFC 3339 with nanoseconds, as libp2p records carry their time. */
function rfc3339(): string {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
}
