/**
 * Server-Sent Events as `connect`'s watch reads them (the stream of
 * `GET /v1/watch`, net/http/events.ts): text split into event blocks at blank
 * lines (any of the three line ends the standard allows), and the `data:`
 * and `id:` fields of each block. Comments (`: heartbeat`) have neither.
 *
 * @module
 */
import { ConnectionError } from "./errors.ts";

/** The fields of one event block that a watch uses. */
export interface EventFields {
  /** Its `data:` lines joined by `\n`; `undefined` when it has none (a comment). */
  readonly data?: string;
  /** Its last `id:` (a checkpoint), `undefined` when it has none. */
  readonly id?: string;
}

/**
 * Reads the event stream `body` of the node at `url` until it ends, calling
 * `onEvent` with the fields of each complete block. Once `signal` aborts it
 * stops reading and throws the abort reason; a connection that breaks is a
 * {@link ConnectionError} (a cut connection is a `TypeError` on some
 * runtimes, not a refusal).
 */
export async function readEventStream(
  body: ReadableStream<Uint8Array>,
  url: string,
  signal: AbortSignal,
  onEvent: (fields: EventFields) => void,
): Promise<void> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel, { once: true });
  let buffer = "";
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw signal.aborted ? signal.reason : new ConnectionError(url, e);
      }
      const { value, done: end } = chunk;
      if (end) break;
      buffer += value;
      let at: number;
      while ((at = eventEnd(buffer)) >= 0) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at).replace(/^(\r\n|\r|\n){2}/, "");
        onEvent(eventFields(block));
      }
    }
  } finally {
    signal.removeEventListener("abort", cancel);
    cancel();
  }
}

/** Index of the end of the first complete event (the blank line that ends it), or -1. */
function eventEnd(buffer: string): number {
  const m = /(\r\n|\r|\n)(\r\n|\r|\n)/.exec(buffer);
  return m ? m.index : -1;
}

/**
 * The `data:` of one event block (lines joined by `\n`, `undefined` when it
 * has none, e.g. comments) and its `id:` (the last one, as the SSE standard
 * says; `undefined` when it has none).
 */
function eventFields(block: string): { data?: string; id?: string } {
  const lines: string[] = [];
  let id: string | undefined;
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line.startsWith("data:")) lines.push(line.slice(line[5] === " " ? 6 : 5));
    else if (line.startsWith("id:")) id = line.slice(line[3] === " " ? 4 : 3);
  }
  return { data: lines.length > 0 ? lines.join("\n") : undefined, id };
}
