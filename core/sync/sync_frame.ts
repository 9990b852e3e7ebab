/**
 * Sync frames: `flag ‖ payload`, flag 0 = raw, 1 = payload compressed with
 * deflate-raw (used for payloads of at least {@link COMPRESS_MIN_BYTES} when
 * it helps), with the web-standard compression streams. Not to be confused
 * with the length-prefixed framing of a libp2p stream (`net/`), which
 * carries these frames, nor with the journal's frames (`storage/journal.ts`).
 *
 * Decoding bounds what a peer may cost: the frame and its decompressed
 * payload are limited, and a compressed payload is inflated a slice at a time
 * with its output counted as it comes (a compression bomb costs at most the
 * limit plus one slice's output).
 *
 * @module
 */
import { DEFAULT_MAX_FRAME_BYTES } from "./protocol.ts";

/** Frame flag: payload as is. */
export const FLAG_RAW = 0;
/** Frame flag: payload compressed with deflate-raw. */
export const FLAG_DEFLATE = 1;
/** Payloads this large or larger are offered to compression. */
export const COMPRESS_MIN_BYTES = 1024;

/** Reads `stream` to its end: `RangeError` (and the stream cancelled) as soon as more than `limit` bytes came. */
async function drain(stream: ReadableStream<Uint8Array>, limit: number, what: string): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw new RangeError(`Cannot decode sync frame: ${what} exceeds the limit of ${limit} bytes`);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) at += (out.set(c, at), c.length);
  return out;
}

/** The web-standard (de)compression streams, typed for bytes in and out. */
function codec(s: CompressionStream | DecompressionStream): ReadableWritablePair<Uint8Array, Uint8Array> {
  return s as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** Wraps a payload in a frame, compressing it with deflate-raw when that is shorter. */
export async function encodeSyncFrame(payload: Uint8Array): Promise<Uint8Array> {
  if (payload.length >= COMPRESS_MIN_BYTES) {
    const z = await drain(
      streamOf(payload).pipeThrough(codec(new CompressionStream("deflate-raw"))),
      payload.length,
      "compressed payload",
    ).catch(() => undefined); // incompressible: larger than the input, sent raw
    if (z && z.length + 1 < payload.length) {
      const out = new Uint8Array(z.length + 1);
      out[0] = FLAG_DEFLATE;
      out.set(z, 1);
      return out;
    }
  }
  const out = new Uint8Array(payload.length + 1);
  out[0] = FLAG_RAW;
  out.set(payload, 1);
  return out;
}

/**
 * Compressed bytes handed to the inflater at a time. Raw DEFLATE expands at
 * most 1032:1, and some runtimes inflate a whole input chunk before yielding
 * any output (Deno: a 1 MiB chunk became 1 GB at once), so output can pass
 * the limit by at most one slice's worth, ~4 MiB, before it is checked.
 */
const INFLATE_SLICE = 4096;

/**
 * Inflates raw DEFLATE `data`, feeding it in {@link INFLATE_SLICE} slices and
 * counting output as it comes: `RangeError` as soon as it passes `limit`.
 */
async function inflateBounded(data: Uint8Array, limit: number): Promise<Uint8Array> {
  const pair = codec(new DecompressionStream("deflate-raw"));
  const writer = pair.writable.getWriter();
  // Each write waits until the inflater took the slice: at most one slice is ahead of the reader.
  const feeding = (async () => {
    for (let at = 0; at < data.length; at += INFLATE_SLICE) {
      await writer.write(data.subarray(at, at + INFLATE_SLICE));
    }
    await writer.close();
  })();
  feeding.catch(() => {}); // a failure also errors the readable side, which reports it
  try {
    const out = await drain(pair.readable, limit, "decompressed payload");
    await feeding;
    return out;
  } catch (e) {
    await writer.abort(e).catch(() => {});
    throw e;
  }
}

/**
 * The payload of a frame. Throws `RangeError` when the frame or its
 * decompressed payload exceeds `maxBytes` (the compressed bytes are inflated
 * a few KiB at a time and output is counted as it comes, so a compression
 * bomb costs at most about `maxBytes` plus 4 MiB on every runtime) and
 * `SyntaxError` on an unknown flag or corrupt deflate data.
 */
export async function decodeSyncFrame(
  frame: Uint8Array,
  maxBytes: number = DEFAULT_MAX_FRAME_BYTES,
): Promise<Uint8Array> {
  if (!(frame instanceof Uint8Array)) throw new TypeError("A sync frame must be a Uint8Array");
  if (frame.length > maxBytes + 1) {
    throw new RangeError(
      `Cannot decode sync frame: length ${frame.length} exceeds the limit of ${maxBytes + 1}`,
    );
  }
  if (frame.length < 2) throw new SyntaxError("Cannot decode sync frame: it is empty");
  if (frame[0] === FLAG_RAW) return frame.subarray(1);
  if (frame[0] !== FLAG_DEFLATE) throw new SyntaxError(`Cannot decode sync frame: unknown flag ${frame[0]}`);
  try {
    return await inflateBounded(frame.subarray(1), maxBytes);
  } catch (e) {
    if (e instanceof RangeError) throw e;
    throw new SyntaxError(`Cannot decode sync frame: corrupt deflate data (${(e as Error).message})`);
  }
}
