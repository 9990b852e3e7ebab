/**
 * Resumable watches: the checkpoints a watcher keeps and the replay of what
 * it missed, whatever carries the changes (today the Server-Sent Events of
 * `GET /v1/watch`, net/http/events.ts). A transport decides only how a
 * checkpoint and a change are written and when its reader is ready for more.
 *
 * A checkpoint `{ actor, seq }` means "every change committed up to this
 * replica's commit `seq` has been emitted to the watchers". Resuming from one
 * sends every node under the target changed after `seq`, whole (all its
 * current fields, `source` by who wrote them); changes committed during the
 * replay follow it, so a field's last event is its current value. When the
 * actor differs (another database answers at that address) or `seq` is ahead
 * of the database, everything under the target is replayed. Delivery is at
 * least once.
 *
 * @module
 */
import type { Change, Database, WatchTarget } from "./database.ts";

/** Where a watcher is: every change up to commit `seq` of replica `actor` has reached it. */
export interface WatchCheckpoint {
  /** The replica's actor id (16 hex digits). */
  readonly actor: string;
  /** Its last commit sequence number at the checkpoint. */
  readonly seq: number;
}

/**
 * The checkpoint of `db` now: its last commit, once the database has emitted
 * (so handed to every watcher) the changes of every commit up to it.
 */
export async function watchCheckpoint(db: Database): Promise<WatchCheckpoint> {
  const seq = await db.lastSeq();
  // Waits until the database has emitted the changes of every commit so far.
  await db.idle();
  return { actor: db.actor, seq };
}

/** Where the replay of {@link replayChanges} goes. */
export interface ReplaySink {
  /** Takes one change (a whole node, by writer side). */
  send(change: Change): void;
  /** Whether the watcher is gone: the replay stops. */
  ended(): boolean;
  /** Called after each page of changes; a promise holds the next page back (a slow reader catches up). */
  afterPage(): Promise<void> | void;
}

/** Ops read per page of the replay. */
const REPLAY_PAGE = 1000;

/**
 * Sends to `sink`, as changes, every node under `target` changed after
 * checkpoint `from` (see the module doc). Resolves when all are sent or the
 * sink has ended.
 */
export async function replayChanges(
  db: Database,
  target: WatchTarget,
  from: WatchCheckpoint,
  sink: ReplaySink,
): Promise<void> {
  const last = await db.lastSeq();
  const after = from.actor === db.actor && from.seq <= last ? from.seq : 0;
  const hit = typeof target === "string"
    ? (s: string) => s === target
    : (s: string) => s.startsWith(target.prefix);
  let cursor: number | undefined;
  for (;;) {
    if (sink.ended()) return;
    const page = await db.exportOps({ after, cursor, limit: REPLAY_PAGE });
    // Ops of a node come together (pages hold whole nodes); one change per node and writer side.
    const changes = new Map<string, Change>();
    for (const op of page.ops) {
      if (!hit(op.soul)) continue;
      const source = op.actor === db.actor ? "local" : "remote";
      const key = `${source}:${op.soul}`;
      let c = changes.get(key);
      if (!c) changes.set(key, c = { soul: op.soul, changes: {}, source });
      Object.defineProperty(c.changes, op.field, {
        value: op.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    for (const c of changes.values()) sink.send(c);
    await sink.afterPage();
    if (page.cursor === undefined) return;
    cursor = page.cursor;
  }
}
