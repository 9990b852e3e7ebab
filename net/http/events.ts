/**
 * `GET /v1/watch`: changes as Server-Sent Events, resumable from checkpoints
 * (core/watch_replay.ts holds what a checkpoint means and the replay), and
 * the caps that keep slow or many readers from holding the node: event
 * streams per node and per client address (429 beyond), and backlog — bytes
 * a stream's socket still holds from an earlier turn of the event loop —
 * per stream and across all of them. Each change is encoded once, and its
 * bytes are shared by every stream it goes to.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Change } from "../../core/database.ts";
import { toJson } from "../../core/json.ts";
import type { Timer } from "../../core/world.ts";
import { replayChanges, type WatchCheckpoint, watchCheckpoint } from "../../core/watch_replay.ts";
import type { Context, Stream } from "./context.ts";
import { HttpError } from "./errors.ts";

/**
 * Default backlog of an event stream: 256 KiB, counted from the socket's own
 * `writableLength` (what the kernel has not taken) less what was written in
 * the current turn of the event loop, checked before each event. A client
 * that never reads holds at most this plus the events of one turn; a reader
 * that keeps up gets every value, however large, and every commit, however
 * many changes it holds. (8 MiB per stream let 100 such watchers add 1 GB;
 * 1 MiB, with each change encoded once per stream, still let 15 of them add
 * 120–160 MB while 12 MiB were written.)
 */
export const DEFAULT_STREAM_BUFFER_BYTES = 256 * 1024;
/**
 * Default budget of backlog across all event streams: 8 MiB. Before an event
 * is written, the streams with the largest backlog are closed until the total,
 * with the event, fits.
 */
export const DEFAULT_STREAMS_BUFFER_BYTES = 8 * 1024 * 1024;
/** Default cap on event streams open at once. */
export const DEFAULT_MAX_STREAMS = 64;
/** Default cap on event streams open at once from one client address. */
export const DEFAULT_MAX_STREAMS_PER_CLIENT = 16;
const UTF8 = new TextEncoder();

/**
 * `GET /v1/watch`: one `data:` event per change under the target, a
 * `: heartbeat` comment every `heartbeatMs`, and checkpoints: id-only events
 * `id: <actor>:<seq>` meaning "every change committed up to this replica's
 * commit `seq` has been sent". A checkpoint is sent at the start and shortly
 * after changes, once the database has finished emitting every commit up to
 * that seq. A client that reconnects with `Last-Event-ID: <actor>:<seq>` first
 * gets every node under the target changed after `seq`, whole (all its
 * current fields, `source` by who wrote them), then the live stream; changes
 * committed during that replay follow it, so a field's last event is its
 * current value. When the actor differs (another database answers at that
 * URL) or `seq` is ahead of the database, everything under the target is
 * replayed (core/watch_replay.ts). Delivery is at least once.
 */
export function watch(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  params: Map<string, string>,
): void {
  const soul = params.get("soul"), prefix = params.get("prefix");
  if ((soul === undefined) === (prefix === undefined)) {
    throw new TypeError("watch takes exactly one of the query parameters soul and prefix");
  }
  const target = soul !== undefined ? soul : { prefix: prefix as string };
  const resume = parseLastEventId(req.headers["last-event-id"]);
  const client = req.socket.remoteAddress ?? "";
  const mine = ctx.streamsByClient.get(client) ?? 0;
  if (ctx.streams.size >= ctx.maxStreams || mine >= ctx.maxStreamsPerClient) {
    const [n, whose] = mine >= ctx.maxStreamsPerClient
      ? [ctx.maxStreamsPerClient, "per client"]
      : [ctx.maxStreams, "in all"];
    throw new HttpError(
      429,
      "too_many_streams",
      `The node serves at most ${n} event streams at once ${whose}; close one or try again later`,
      { "retry-after": "5" },
    );
  }
  // Set once subscribed and streaming; `end` may run before either.
  const live: { unsubscribe?: () => void; heartbeat?: Timer } = {};
  let ended = false;
  const end = () => {
    if (!ctx.streams.delete(end)) return;
    const left = (ctx.streamsByClient.get(client) ?? 1) - 1;
    if (left > 0) ctx.streamsByClient.set(client, left);
    else ctx.streamsByClient.delete(client);
    ended = true;
    live.unsubscribe?.();
    ctx.world.clearTimer(live.heartbeat);
    if (!res.writableEnded) res.end();
  };
  const stream: Stream = { res, turn: -1, fresh: 0 };
  const write = (chunk: string | Uint8Array) => {
    if (res.writableEnded || res.destroyed) return end();
    // Checked before writing: the events of one turn may pass the limit (a large value, or a commit of
    // several, to a reader that keeps up), but a backlog left from an earlier turn past it means the
    // client is not reading.
    if (backlog(ctx, stream) > ctx.streamBuffer) {
      ctx.log.warn("http", "closing an event stream whose client does not keep up", { client });
      end();
      res.destroy();
      return;
    }
    trimStreams(ctx, chunk.length);
    if (ended) return;
    res.write(chunk);
    wrote(ctx, stream, chunk.length);
  };
  const sendChange = (c: Change) => {
    const bytes = changeEvent(ctx, c);
    if (bytes !== undefined) write(bytes);
  };

  // Checkpoints, coalesced: at most one in flight, one more queued behind it.
  let checkpointing = false, again = false;
  const checkpoint = () => {
    if (checkpointing) {
      again = true;
      return;
    }
    checkpointing = true;
    void (async () => {
      try {
        do {
          again = false;
          // Once the database has emitted (so written here) the changes of every commit up to it.
          const { actor, seq } = await watchCheckpoint(ctx.db);
          if (ended) return;
          write(`id: ${actor}:${seq}\n\n`);
        } while (again && !ended);
      } catch (e) {
        if (!ended) ctx.log.debug("http", "no watch checkpoint", { error: (e as Error).message });
      } finally {
        checkpointing = false;
      }
    })();
  };

  /** Changes that arrive while a replay runs; sent after it. */
  let held: Change[] | undefined = resume ? [] : undefined;
  // Subscribe first: a bad soul is a 400 before any header is sent.
  live.unsubscribe = ctx.db.watch(target, (c: Change) => {
    if (held) held.push(c);
    else {
      sendChange(c);
      checkpoint();
    }
  });
  ctx.streams.set(end, stream);
  ctx.streamsByClient.set(client, mine + 1);
  res.on("close", end);
  res.on("error", end);
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
    "x-content-type-options": "nosniff",
  });
  // The first comment tells the client that the subscription is live.
  res.write(": watching\n\n");
  const heartbeat = () => {
    write(": heartbeat\n\n");
    if (!ended) live.heartbeat = ctx.world.setTimer(heartbeat, ctx.heartbeatMs);
  };
  live.heartbeat = ctx.world.setTimer(heartbeat, ctx.heartbeatMs);
  if (!resume) return checkpoint();
  replayChanges(ctx.db, target, resume, {
    send: sendChange,
    ended: () => ended,
    afterPage: () => drained(ctx, res),
  }).then(() => {
    const changes = held ?? [];
    held = undefined;
    for (const c of changes) sendChange(c);
    checkpoint();
  }, (e: Error) => {
    if (ended) return;
    ctx.log.warn("http", "replaying a watch failed; closing its stream", { error: e.message });
    end();
  });
}

/** Bytes written to an event stream that its client has not read yet (held by node:http or its socket). */
function unread(res: ServerResponse): number {
  return Math.max(res.writableLength, res.socket?.writableLength ?? 0);
}

/**
 * Unread bytes of a stream that were written before the current turn of the
 * event loop: what its client has had the time to read and did not. (Writes
 * leave in a later turn on Deno and Bun, so every event of one turn is still
 * unread as the next is written, even for a client that keeps up.)
 */
function backlog(ctx: Context, s: Stream): number {
  if (s.turn !== ctx.turn) [s.turn, s.fresh] = [ctx.turn, 0];
  return Math.max(0, unread(s.res) - s.fresh);
}

/** Counts `bytes` just written to a stream as fresh until the current turn ends. */
function wrote(ctx: Context, s: Stream, bytes: number): void {
  s.fresh += bytes;
  if (ctx.turnEnding) return;
  ctx.turnEnding = true;
  ctx.world.setTimer(() => {
    ctx.turn++;
    ctx.turnEnding = false;
  }, 0);
}

/**
 * The `data:` event of a change as UTF-8, encoded by the first stream that
 * sends it and shared with the others (the database hands every watcher the
 * same `Change`); `undefined` when it cannot be encoded (logged).
 */
function changeEvent(ctx: Context, c: Change): Uint8Array | undefined {
  let bytes = ctx.events.get(c);
  if (bytes !== undefined) return bytes;
  try {
    const line = JSON.stringify({ soul: c.soul, changes: toJson(c.changes), source: c.source });
    bytes = UTF8.encode(`data: ${line}\n\n`);
  } catch (e) {
    ctx.log.error("http", "cannot encode a change", { error: (e as Error).message });
    return undefined;
  }
  ctx.events.set(c, bytes);
  return bytes;
}

/**
 * Before `bytes` more are written to an event stream: closes the streams with
 * the largest {@link backlog} until all backlogs, with these bytes, fit in
 * `streamsBufferBytes` (a stream whose client keeps up is never closed for it).
 */
function trimStreams(ctx: Context, bytes: number): void {
  for (;;) {
    let total = bytes, worst: (() => void) | undefined, most = 0;
    for (const [end, stream] of ctx.streams) {
      const n = backlog(ctx, stream);
      total += n;
      if (n > most) [worst, most] = [end, n];
    }
    if (total <= ctx.streamsBuffer || worst === undefined) return;
    const { res } = ctx.streams.get(worst)!;
    ctx.log.warn("http", "closing the event stream with the most unread bytes: all streams hold too many", {
      unread: most,
    });
    worst();
    res.destroy();
  }
}

/** `<actor>:<seq>` of a `Last-Event-ID` header, `undefined` without one; `TypeError` when malformed. */
function parseLastEventId(header: string | string[] | undefined): WatchCheckpoint | undefined {
  if (header === undefined || header === "") return undefined;
  const m = typeof header === "string" ? /^([0-9a-f]{16}):(\d{1,15})$/.exec(header) : null;
  if (!m) {
    throw new TypeError(
      `Last-Event-ID must be a checkpoint of this API (<actor>:<seq>), got ${JSON.stringify(String(header))}`,
    );
  }
  return { actor: m[1], seq: Number(m[2]) };
}

/**
 * During a replay: once a slow reader holds more than a quarter of the
 * stream's backlog limit, waits until it has read it (or gone), instead of
 * buffering a whole database.
 */
async function drained(ctx: Context, res: ServerResponse): Promise<void> {
  if (res.writableLength > ctx.streamBuffer / 4 && !res.destroyed) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.on("drain", done);
      res.on("close", done);
    });
  }
}
