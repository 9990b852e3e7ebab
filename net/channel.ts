/**
 * Channels: framed, bidirectional byte streams over one libp2p stream each,
 * for request/response protocols (sync). The framing is `lpStream` from
 * `@libp2p/utils`: an unsigned-varint (LEB128) length, then that many bytes
 * (docs/PROTOCOL.md "Channels"). It buffers a frame's chunks in a
 * `Uint8ArrayList` and joins them once, so reassembly is linear however the
 * sender slices a frame.
 *
 * What lpStream does not do is judge a chunk as it arrives: it buffers in its
 * `message` listener and parses lengths when the reader next awaits, and
 * Deno reads a socket's backlog in one run of microtasks, so a reader behind
 * an async call sees a flood of tiny chunks only after libp2p has decrypted
 * (and answered) all of them. A {@link FrameMeter} therefore listens beside
 * it: it follows the same length prefixes, keeps no bytes, and on each chunk
 * charges the peer's byte budget, refuses a length over the limit before any
 * of it is buffered, and refuses a frame sent in far more pieces than an
 * honest sender's; the stream is aborted while the flood is still being read.
 *
 * @module
 */
import type { Stream } from "@libp2p/interface";
import { lpStream } from "@libp2p/utils";

/** Largest frame a {@link Channel} sends or accepts by default (4 MiB). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** Chunks any frame may arrive in, however short (see {@link FrameMeter}). */
export const FRAME_PIECES_FLOOR = 64;
/**
 * One more chunk is allowed per this many bytes of a frame that arrived: a
 * flood of 64-byte chunks is cut after ~66 of them, and a 4 MiB frame may come
 * in at most 1,088, which an honest sender's 64 KiB (yamux) or 16 KiB (WebRTC)
 * messages stay 4–16× under.
 */
export const FRAME_PIECE_BYTES = 4096;

/** Longest length prefix read: 5 bytes of 7 bits hold any length up to 2³⁵. */
const MAX_PREFIX_BYTES = 5;

/** A framed, bidirectional byte channel over one libp2p stream. */
export interface Channel {
  /** Sends one frame (length-prefixed on the wire); waits while the stream is congested. */
  send(frame: Uint8Array): Promise<void>;
  /** Frames from the remote side, in order; ends when the remote closes its side. */
  readonly frames: AsyncIterable<Uint8Array>;
  /** Closes both directions; safe to call twice. */
  close(): void;
}

/** What a channel reports to its node about the peer on the other side. */
export interface ChannelGuard {
  /** Told every chunk's size first; false gives the stream up (the peer is over its byte budget). */
  spend?(bytes: number): boolean;
  /** A frame broke the framing rules (too many pieces): the peer misbehaves. */
  violated?(reason: string): void;
}

/** A chunk as libp2p hands it over: a `Uint8Array` or a `Uint8ArrayList` (iterable over its parts). */
type Chunk = Uint8Array | Iterable<Uint8Array> & { readonly byteLength: number };

/**
 * Follows the frames of a byte stream chunk by chunk, synchronously, keeping
 * no bytes: it reads each length prefix and counts the bytes and chunks of
 * the frame it announces. Throws `RangeError` for a length above `max`
 * (before a byte of it is buffered) and for a frame that arrives in more than
 * {@link FRAME_PIECES_FLOOR} + (its bytes that arrived so far) /
 * {@link FRAME_PIECE_BYTES} chunks (its length prefix included; `violated`
 * hears why first). Each chunk costs the receiver far more in libp2p than
 * here (noise decryption, and a yamux window update encrypted and written
 * back for every data message): a 4 MiB frame in 64-byte chunks cost 2.3 s
 * of CPU and stalled the event loop for up to 1.9 s. An honest sender writes
 * a frame at once, which arrives in yamux messages of up to 64 KiB (WebRTC
 * messages of 16 KiB).
 */
export class FrameMeter {
  readonly #max: number;
  readonly #violated?: (reason: string) => void;
  /** The length prefix being read: its value so far, the weight of its next byte, its bytes. */
  #len = 0;
  #weight = 1;
  #prefix = 0;
  /** Bytes the frame being received still lacks (0 between frames and inside a prefix). */
  #need = 0;
  /** Chunks the current frame (prefix included) arrived in, its bytes so far, its length. */
  #chunks = 0;
  #got = 0;
  #frameLen = 0;

  constructor(max: number, violated?: (reason: string) => void) {
    this.#max = max;
    this.#violated = violated;
  }

  /** Whether the bytes so far end between two frames (a stream may end here). */
  get between(): boolean {
    return this.#need === 0 && this.#weight === 1;
  }

  /** Takes one chunk. */
  push(chunk: Chunk): void {
    if (!this.between && ++this.#chunks > FRAME_PIECES_FLOOR + Math.floor(this.#got / FRAME_PIECE_BYTES)) {
      const of = this.#need > 0 ? `${this.#frameLen} bytes` : "unread length";
      const reason = `a frame of ${of} arrived in more than ${
        this.#chunks - 1
      } pieces for ${this.#got} bytes`;
      this.#violated?.(reason);
      throw new RangeError(`Cannot decode frame: ${reason}`);
    }
    if (chunk instanceof Uint8Array) this.#scan(chunk);
    else for (const part of chunk) this.#scan(part);
  }

  #scan(bytes: Uint8Array): void {
    const n = bytes.length;
    let at = 0;
    while (at < n) {
      if (this.#need > 0) {
        const take = Math.min(this.#need, n - at);
        at += take;
        this.#got += take;
        this.#need -= take;
        continue;
      }
      const byte = bytes[at++];
      if (this.#weight === 1) this.#chunks = 1, this.#got = 0; // a new frame starts in this chunk
      this.#len += (byte & 0x7f) * this.#weight;
      this.#weight *= 128;
      if ((byte & 0x80) !== 0) {
        if (++this.#prefix >= MAX_PREFIX_BYTES) {
          throw new RangeError(`Cannot decode frame: length prefix is longer than ${MAX_PREFIX_BYTES} bytes`);
        }
        continue;
      }
      const size = this.#len;
      if (size > this.#max) {
        throw new RangeError(`Cannot decode frame: length ${size} exceeds limit ${this.#max}`);
      }
      this.#len = 0, this.#weight = 1, this.#prefix = 0;
      this.#frameLen = size;
      this.#need = size;
    }
  }
}

/**
 * A {@link Channel} over `stream`, with frames up to `max` bytes both ways.
 * Reads and writes go through `lpStream`; a {@link FrameMeter} judges each
 * chunk in the stream's `message` event, and the first chunk it refuses (or
 * that `guard.spend` refuses) aborts the stream: `frames` then yields the
 * frames that were complete before it and throws its error.
 */
export function openChannel(stream: Stream, max: number, guard: ChannelGuard = {}): Channel {
  const meter = new FrameMeter(max, guard.violated);
  let failure: Error | undefined;
  const onMessage = (evt: Event): void => {
    if (failure !== undefined) return;
    const chunk = (evt as Event & { data: Chunk }).data;
    try {
      if (guard.spend !== undefined && !guard.spend(chunk.byteLength)) {
        throw new RangeError("Cannot read frames: the peer is over its byte budget");
      }
      meter.push(chunk);
    } catch (e) {
      failure = e as Error;
      stream.abort(failure);
    }
  };
  const onClose = (evt: Event): void => {
    failure ??= (evt as Event & { error?: Error }).error;
    stream.removeEventListener("message", onMessage);
  };
  // Before lpStream's own listener, so a refused chunk is judged before it is buffered.
  stream.addEventListener("message", onMessage);
  stream.addEventListener("close", onClose, { once: true });
  // Frames are read as the session asks; the byte budget above bounds what waits unread, as the
  // sync protocol lets a sender write many frames before the receiver reads them.
  const lp = lpStream(stream, {
    maxDataLength: max,
    maxLengthLength: MAX_PREFIX_BYTES,
    maxBufferSize: Number.POSITIVE_INFINITY,
  });

  async function* frames(): AsyncGenerator<Uint8Array> {
    for (;;) {
      let frame;
      try {
        frame = await lp.read();
      } catch (e) {
        if (failure !== undefined) throw failure;
        // lpStream reports every end of stream as UnexpectedEOFError; the meter knows if it fell between frames.
        if ((e as Error)?.name !== "UnexpectedEOFError") throw e;
        if (meter.between) return;
        throw new SyntaxError("Cannot decode frame: stream ended inside a frame");
      }
      yield frame.slice(); // one copy, joining the frame's pieces if it came in several
    }
  }

  let closed = false;
  return {
    async send(frame: Uint8Array): Promise<void> {
      if (closed) throw new Error("Cannot send frame: the channel is closed");
      if (frame.length > max) {
        throw new RangeError(`Cannot send frame: length ${frame.length} exceeds limit ${max}`);
      }
      await lp.write(frame);
    },
    frames: frames(),
    close(): void {
      if (closed) return;
      closed = true;
      stream.close().catch((e: Error) => stream.abort(e));
    },
  };
}
