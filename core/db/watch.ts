/**
 * Watchers and commit listeners: who hears of committed writes, and what a
 * drain of the commit queue tells them.
 *
 * A drain gathers its report ({@link Watchers.report}) while it decides, and
 * hands it over ({@link Watchers.announce}) once its commit is durable, so
 * nobody hears of a write that did not happen. With nobody watching or
 * listening (the rule on the hot paths), the report is one frozen, empty
 * object: nothing is grouped or allocated per commit.
 *
 * @module
 */
import type { NodeData } from "../value.ts";
import { decodeValue, setField } from "../value_encoding.ts";
import type { FieldRecord } from "../store.ts";
import { reportError } from "./report_error.ts";

/**
 * A change seen by a watcher: the fields of one node that changed, `null` meaning deleted.
 *
 * @example
 * ```ts
 * import { type Change, open } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * const seen: Change[] = [];
 * const stop = db.watch("alice", (change) => seen.push(change));
 * await db.put("alice", { name: "Alice" });
 * console.log(seen); // [{ soul: "alice", changes: { name: "Alice" }, source: "local" }]
 * stop();
 * await db.close();
 * ```
 */
export interface Change {
  readonly soul: string;
  readonly changes: NodeData;
  /** `local` for this replica's writes, `remote` for merged foreign ops. */
  readonly source: "local" | "remote";
}

/**
 * What `watch` listens to: one soul, or every soul under a prefix.
 *
 * @example
 * ```ts
 * import { open, type WatchTarget } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * const users: WatchTarget = { prefix: "user/" };
 * const souls: string[] = [];
 * const stop = db.watch(users, (change) => souls.push(change.soul));
 * await db.put("user/alice", { name: "Alice" });
 * await db.put("post/1", { text: "hi" });
 * console.log(souls); // ["user/alice"]
 * stop();
 * await db.close();
 * ```
 */
export type WatchTarget = string | { readonly prefix: string };

/** A listener of every committed write (`Database.onCommit`). */
export type CommitListener = (records: readonly FieldRecord[], local: boolean) => void;

/** What a committed drain reports to watchers and commit listeners. */
export interface CommitReport {
  readonly events: Change[];
  readonly committed: { records: readonly FieldRecord[]; local: boolean }[];
}

const NONE: readonly never[] = Object.freeze([]);
/** A report's lists for nobody (frozen and empty: see {@link Watchers.report}). */
const NO_EVENTS: Change[] = NONE as never[];
const NO_COMMITS: CommitReport["committed"] = NONE as never[];
/** The report of a drain nobody watches or listens to. */
const NOBODY: CommitReport = Object.freeze({ events: NO_EVENTS, committed: NO_COMMITS });

/** The watchers and commit listeners of one database. */
export class Watchers {
  readonly #watchers = new Set<{ target: WatchTarget; cb: (c: Change) => void }>();
  readonly #listeners = new Set<CommitListener>();

  /** Whether nobody watches or listens: a commit then tells nobody. */
  isQuiet(): boolean {
    return this.#watchers.size === 0 && this.#listeners.size === 0;
  }

  /** Adds a watch (a soul target is checked by the caller); returns unsubscribe. */
  watch(target: WatchTarget, cb: (change: Change) => void): () => void {
    if (
      typeof target !== "string" &&
      (typeof target !== "object" || target === null || typeof target.prefix !== "string")
    ) {
      throw new TypeError("watch takes a soul or { prefix }");
    }
    if (typeof cb !== "function") throw new TypeError("watch needs a callback");
    const entry = { target, cb };
    this.#watchers.add(entry);
    return () => this.#watchers.delete(entry);
  }

  /** Adds a commit listener; returns unsubscribe. */
  onCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Drops every watcher and listener (the database closes). */
  clear(): void {
    this.#watchers.clear();
    this.#listeners.clear();
  }

  /** What a drain tells watchers and commit listeners, as it is gathered: arrays only for those there are. */
  report(): CommitReport {
    const watched = this.#watchers.size > 0, listening = this.#listeners.size > 0;
    return watched || listening
      ? { events: watched ? [] : NO_EVENTS, committed: listening ? [] : NO_COMMITS }
      : NOBODY;
  }

  /** Adds the records one job committed to `report`. */
  add(report: CommitReport, won: readonly FieldRecord[], local: boolean): void {
    if (won.length === 0) return;
    if (report.committed !== NO_COMMITS) report.committed.push({ records: won, local });
    if (report.events !== NO_EVENTS) report.events.push(...groupChanges(won, local ? "local" : "remote"));
  }

  /** Tells watchers and commit listeners what a drain committed. */
  announce({ events, committed }: CommitReport): void {
    this.#emit(events);
    for (const listener of this.#listeners) {
      for (const c of committed) {
        try {
          listener(c.records, c.local);
        } catch (e) {
          reportError(e);
        }
      }
    }
  }

  #emit(events: Change[]): void {
    if (this.#watchers.size === 0) return;
    for (const ev of events) {
      for (const { target, cb } of this.#watchers) {
        const hit = typeof target === "string" ? ev.soul === target : ev.soul.startsWith(target.prefix);
        if (!hit) continue;
        try {
          cb(ev);
        } catch (e) {
          reportError(e);
        }
      }
    }
  }
}

/** The changes of committed records, one per soul. */
function groupChanges(records: readonly FieldRecord[], source: "local" | "remote"): Change[] {
  const bySoul = new Map<string, NodeData>();
  for (const r of records) {
    let c = bySoul.get(r.soul);
    if (!c) bySoul.set(r.soul, c = {});
    setField(c, r.field, decodeValue(r.value));
  }
  return [...bySoul].map(([soul, changes]) => ({ soul, changes, source }));
}
