/**
 * net/channel.ts: frames on the wire are an unsigned-varint length and the payload (docs/PROTOCOL.md
 * "Channels"), written and read through lpStream; the meter beside it enforces the frame limit, the
 * pieces rule and the byte budget as each chunk arrives.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FRAME_PIECE_BYTES, FRAME_PIECES_FLOOR, FrameMeter, openChannel } from "../net/channel.ts";
import { MessageStream } from "./_message_stream.ts";

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);

async function collect(frames: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const f of frames) out.push(f);
  return out;
}

describe("channel framing", () => {
  it("sends each frame as its LEB128 length then its bytes, exactly", async () => {
    const s = new MessageStream();
    const channel = openChannel(s.stream, 1 << 22);
    const sizes = [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 20];
    for (const n of sizes) await channel.send(bytes(n, n & 0xff));
    const expected: Uint8Array[] = [];
    const prefixes: Record<number, number[]> = {
      0: [0x00],
      1: [0x01],
      127: [0x7f],
      128: [0x80, 0x01],
      300: [0xac, 0x02],
      16_383: [0xff, 0x7f],
      16_384: [0x80, 0x80, 0x01],
      [1 << 20]: [0x80, 0x80, 0x40],
    };
    for (const n of sizes) expected.push(Uint8Array.from(prefixes[n]), bytes(n, n & 0xff));
    const wire = new Uint8Array(expected.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of expected) at += (wire.set(b, at), b.length);
    assert.deepEqual(s.bytesSent(), wire);
  });

  it("reads back what it sends, however an honest sender's bytes are chunked", async () => {
    for (
      const [frames, steps] of [
        [[bytes(0), bytes(5, 1), bytes(60, 2)], [1, 3, 7]], // small frames, a few bytes per chunk
        [[bytes(0), bytes(5, 1), bytes(200, 2), bytes(70_000, 3)], [1000, 4096, 16_384, 65_536, 1 << 20]],
      ] as const
    ) {
      const out = new MessageStream();
      const sender = openChannel(out.stream, 1 << 20);
      for (const f of frames) await sender.send(f);
      const wire = out.bytesSent();
      for (const step of steps) {
        const s = new MessageStream();
        const got = collect(openChannel(s.stream, 1 << 20).frames);
        for (let at = 0; at < wire.length; at += step) s.deliver(wire.slice(at, at + step));
        s.endRemote();
        assert.deepEqual(await got, frames, `chunks of ${step}`);
      }
    }
  });

  it("refuses a length over the limit as soon as the prefix arrives", async () => {
    const s = new MessageStream();
    const channel = openChannel(s.stream, 1000);
    const got = collect(channel.frames);
    s.deliver(Uint8Array.of(0xe9, 0x07)); // 1001
    assert.ok(s.aborted instanceof RangeError);
    await assert.rejects(
      got,
      (e: Error) => e instanceof RangeError && /length 1001 exceeds limit 1000/.test(e.message),
    );
    await assert.rejects(channel.send(bytes(1001)), /length 1001 exceeds limit 1000/);
  });

  it("a stream that ends inside a frame is a SyntaxError; between frames, the end", async () => {
    const s = new MessageStream();
    const got = collect(openChannel(s.stream, 1000).frames);
    s.deliver(Uint8Array.of(3, 1, 2, 3, 5, 1));
    s.endRemote();
    await assert.rejects(
      got,
      (e: Error) => e instanceof SyntaxError && /ended inside a frame/.test(e.message),
    );
    const t = new MessageStream();
    const ok = collect(openChannel(t.stream, 1000).frames);
    t.deliver(Uint8Array.of(2, 9, 9));
    t.endRemote();
    assert.deepEqual(await ok, [Uint8Array.of(9, 9)]);
  });

  it("charges every chunk to the peer's budget and gives the stream up when it is spent", async () => {
    const s = new MessageStream();
    const spent: number[] = [];
    const channel = openChannel(s.stream, 1000, { spend: (n) => (spent.push(n), spent.length < 3) });
    const got = collect(channel.frames);
    s.deliver(Uint8Array.of(1, 1));
    s.deliver(Uint8Array.of(1, 2, 1));
    s.deliver(Uint8Array.of(3));
    s.deliver(Uint8Array.of(1, 4)); // after the refusal: not charged, not read
    assert.deepEqual(spent, [2, 3, 1]);
    await assert.rejects(got, /over its byte budget/);
  });

  it("the meter follows frames across chunks and keeps no bytes", () => {
    const m = new FrameMeter(1 << 20);
    assert.equal(m.between, true);
    m.push(Uint8Array.of(0x80));
    assert.equal(m.between, false);
    m.push(Uint8Array.of(0x01, 1, 2));
    assert.equal(m.between, false);
    m.push(new Uint8Array(126));
    assert.equal(m.between, true);
    assert.throws(() => m.push(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80)), /longer than 5 bytes/);
  });

  it("the meter cuts a frame that arrives in more pieces than the rule allows", () => {
    const reasons: string[] = [];
    const m = new FrameMeter(1 << 20, (r) => reasons.push(r));
    m.push(Uint8Array.of(0x80, 0x40)); // 8192
    let pieces = 1;
    assert.throws(() => {
      for (;; pieces++) m.push(new Uint8Array(16));
    }, /more than \d+ pieces/);
    assert.equal(pieces, FRAME_PIECES_FLOOR);
    assert.deepEqual(reasons, [
      `a frame of 8192 bytes arrived in more than ${FRAME_PIECES_FLOOR} pieces for 1008 bytes`,
    ]);
    // One more piece is allowed per FRAME_PIECE_BYTES that arrived.
    const big = new FrameMeter(1 << 20);
    big.push(Uint8Array.of(0x80, 0x80, 0x04)); // 65,536
    for (let i = 0; i < 16; i++) big.push(new Uint8Array(FRAME_PIECE_BYTES));
    assert.equal(big.between, true);
  });
});
