/**
 * One database shared by the tabs (and workers) of an origin: {@link SharedDatabase}.
 *
 * An OPFS database can be held by one page only (its worker holds the files'
 * handles exclusively). So one tab per path is the owner: the holder of the
 * Web Lock `lattice:<path>` (held for the owner's life; the browser lets go
 * of it when the tab closes or crashes), which runs the real Database (and
 * its network, when asked for). The other tabs forward their calls to it
 * over the BroadcastChannel `lattice:<path>` (runtime/tabs_protocol.ts) and
 * get the changes their watches ask for. Each of them waits in the lock's
 * queue: when the owner goes, the first in line opens the store and takes
 * over; it runs its own unanswered calls itself and tells the others, who
 * send theirs again, and their watches. A write resolves only once the owner
 * has committed it (its `put` resolved), so no resolved write is lost in a
 * hand-over; one in flight may run twice (an idempotent put or delete).
 *
 * A client that goes says `bye` (on close, or when its page hides), and the
 * owner drops the watches it kept for it. One that cannot (its page crashed,
 * or was killed) is noticed through a Web Lock of its own,
 * `lattice:<path>#<tab>`, held for its life: the owner asks for it when it
 * first keeps a watch for that tab, is granted it once the browser let go of
 * it with the tab, and then drops that tab's watches.
 *
 * Where Web Locks or BroadcastChannel are missing (server runtimes, old
 * browsers), and for storage other than `opfs`, the database is this tab's
 * own, as `open` gives it (one opener).
 *
 * @module
 */
import type {
  Change,
  Database,
  Entry,
  ListOptions,
  Query,
  WatchTarget,
  WriteResult,
} from "../core/database.ts";
import type { NodeData } from "../core/value.ts";
import { systemWorld, type World } from "../core/world.ts";
import { isServerRuntime } from "./detect.ts";
import { replayChanges } from "../core/watch_replay.ts";
import {
  fromTabError,
  runCall,
  type SharedStatus,
  type TabMessage,
  type TabMethod,
  toTabError,
} from "./tabs_protocol.ts";

export type { SharedStatus };

/** What {@link openSharedWith} needs of the options. */
export interface SharedOpenOptions {
  readonly path?: string;
  readonly storage?: string;
  readonly world?: World;
}

interface LockManager {
  request(
    name: string,
    options: { ifAvailable?: boolean; signal?: AbortSignal },
    cb: (lock: unknown) => Promise<void>,
  ): Promise<void>;
}

interface Pending {
  readonly m: TabMethod;
  readonly a: unknown[];
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Watch {
  readonly target: WatchTarget;
  readonly cb: (change: Change) => void;
  /** Its subscription on this tab's Database, while this tab is the owner. */
  stop: (() => void) | undefined;
}

/** How long a new owner keeps trying to open the store the old one is letting go of. */
const TAKE_OVER_TRIES = 40;
const TAKE_OVER_WAIT_MS = 250;

function lockManager(): LockManager | undefined {
  const g = globalThis as { navigator?: { locks?: LockManager }; BroadcastChannel?: unknown };
  if (typeof g.BroadcastChannel !== "function") return undefined;
  const locks = g.navigator?.locks;
  return typeof locks?.request === "function" ? locks : undefined;
}

/** The page's events (`pagehide`), where there is a page. */
function pageEvents(): {
  addEventListener: EventTarget["addEventListener"];
  removeEventListener: EventTarget["removeEventListener"];
} | undefined {
  const g = globalThis as { addEventListener?: unknown; document?: unknown };
  return typeof g.addEventListener === "function" && g.document !== undefined
    ? globalThis as unknown as EventTarget
    : undefined;
}

/**
 * Opens database `options.path` shared with the other tabs of the origin
 * (see the module comment); `open` opens the real one when this tab is or
 * becomes the owner.
 */
export async function openSharedWith<O extends SharedOpenOptions>(
  options: O,
  open: (options: O) => Promise<Database>,
): Promise<SharedDatabase> {
  return await SharedDatabase.start(await sharedName(options), () => open(options));
}

/**
 * The OPFS database `options` open, which the tabs share: `storage: "opfs"`,
 * or `auto` with a path in a browser that has OPFS (as `open` picks it);
 * `undefined` for any other storage (each tab its own).
 */
async function sharedName(options: SharedOpenOptions): Promise<string | undefined> {
  if (options.storage === "opfs") return options.path ?? "lattice";
  if ((options.storage ?? "auto") !== "auto" || options.path === undefined || isServerRuntime()) {
    return undefined;
  }
  return (await import("../storage/opfs.ts")).hasOpfs() ? options.path : undefined;
}

/**
 * A database shared by the tabs of an origin: this tab's own Database when
 * it is the owner, else a forwarder to the owner's. It has the calls that
 * cross tabs: `put`, `get`, `delete`, `list`, `query`, `search`,
 * `countNodes`, `watch`, `status`, `close`.
 *
 * @example
 * ```ts
 * import { openShared, type SharedDatabase } from "../mod.ts";
 * const db: SharedDatabase = await openShared({ storage: "memory" }); // opfs in a browser: shared by its tabs
 * const seen: string[] = [];
 * db.watch({ prefix: "t/" }, (change) => seen.push(change.soul));
 * await db.put("t/1", { n: 1 });
 * console.log(db.owner, seen); // true [ "t/1" ]
 * await db.close();
 * ```
 */
export class SharedDatabase {
  readonly #channel: BroadcastChannel | undefined;
  /** The Web Locks and the shared lock's name, when shared. */
  readonly #locks: LockManager | undefined;
  readonly #name: string | undefined;
  /** The tabs the owner keeps watches for and waits to see go (their locks asked for). */
  readonly #clients = new Set<string>();
  readonly #open: () => Promise<Database>;
  readonly #world: World;
  /** This tab's name on the channel (random). */
  readonly #id: string;
  readonly #pending = new Map<number, Pending>();
  readonly #watches = new Map<number, Watch>();
  /** The owner's watches for other tabs, by `<tab> <watch>`. */
  readonly #served = new Map<string, () => void>();
  #next = 1;
  #db: Database | undefined;
  #failed: Error | undefined;
  #release!: () => void;
  /** Resolves when this tab lets go of the lock (close). */
  readonly #held: Promise<void> = new Promise<void>((resolve) => this.#release = resolve);
  /** Drops this tab's place in the lock's queue (close). */
  readonly #abort: AbortController = new AbortController();
  #closed = false;

  private constructor(
    channel: BroadcastChannel | undefined,
    open: () => Promise<Database>,
    world: World,
    locks?: LockManager,
    name?: string,
  ) {
    this.#world = world;
    this.#locks = locks;
    this.#name = name;
    this.#id = Array.from(world.randomBytes(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    this.#channel = channel;
    this.#open = open;
    if (channel) {
      channel.onmessage = (e: MessageEvent<TabMessage>) => this.#hear(e.data);
      pageEvents()?.addEventListener("pagehide", this.#leaving);
    }
  }

  /**
   * Opens the database shared under `path` (`undefined`: not shared, this
   * tab's own): the owner when the lock is free, else a client in the lock's
   * queue. `open` opens the real Database.
   */
  static async start(
    path: string | undefined,
    open: () => Promise<Database>,
    world: World = systemWorld,
  ): Promise<SharedDatabase> {
    const locks = lockManager();
    if (path === undefined || locks === undefined) {
      const own = new SharedDatabase(undefined, open, world);
      await own.#takeOver(false);
      return own;
    }
    const name = `lattice:${path}`;
    const shared = new SharedDatabase(new BroadcastChannel(name), open, world, locks, name);
    let granted!: (got: boolean) => void;
    const got = new Promise<boolean>((resolve) => granted = resolve);
    void locks.request(name, { ifAvailable: true }, async (lock) => {
      granted(lock !== null);
      if (lock !== null) await shared.#held;
    });
    if (await got) {
      try {
        await shared.#takeOver(false);
      } catch (e) {
        shared.#closed = true;
        shared.#channel?.close();
        shared.#release();
        throw e;
      }
      return shared;
    }
    // A client: it holds a lock of its own while it lives, so that an owner sees it go even without a
    // word (its page crashed). Held before any watch is sent: the owner's request for it must queue.
    await new Promise<void>((held) => {
      locks.request(`${name}#${shared.#id}`, {}, async () => {
        held();
        await shared.#held;
      }).catch(() => held());
    });
    // In the lock's queue, to take over when the owner goes.
    locks.request(name, { signal: shared.#abort.signal }, async () => {
      if (shared.#closed) return;
      await shared.#takeOver(true).catch((e) => shared.#fail(e));
      await shared.#held;
    }).catch(() => {}); // aborted by close()
    return shared;
  }

  /** Whether this tab runs the database (others forward to it). */
  get owner(): boolean {
    return this.#db !== undefined;
  }

  /** This tab's Database while it is the owner, else `undefined`. */
  get database(): Database | undefined {
    return this.#db;
  }

  put(soul: string, data: Record<string, unknown>): Promise<WriteResult> {
    return this.#call("put", [soul, data]) as Promise<WriteResult>;
  }

  get(soul: string): Promise<NodeData | undefined> {
    return this.#call("get", [soul]) as Promise<NodeData | undefined>;
  }

  delete(soul: string, field?: string): Promise<WriteResult> {
    return this.#call("delete", [soul, field]) as Promise<WriteResult>;
  }

  /** The entries `Database.list` yields (fetched whole from the owner, then yielded). */
  async *list(options: ListOptions = {}): AsyncGenerator<Entry> {
    yield* await this.#call("list", [options]) as Entry[];
  }

  query(q: Query): Promise<Entry[]> {
    return this.#call("query", [q]) as Promise<Entry[]>;
  }

  search(s: Parameters<Database["search"]>[0]): ReturnType<Database["search"]> {
    return this.#call("search", [s]) as ReturnType<Database["search"]>;
  }

  countNodes(): Promise<number> {
    return this.#call("countNodes", []) as Promise<number>;
  }

  /** The owner's status, with `owner` telling whether this tab is it. */
  async status(): Promise<SharedStatus> {
    const s = await this.#call("status", []) as SharedStatus;
    return { ...s, owner: this.owner };
  }

  /** As `Database.watch`: changes written by any tab. Returns unsubscribe. */
  watch(target: WatchTarget, cb: (change: Change) => void): () => void {
    if (this.#closed) throw new Error("The database is closed");
    const w = this.#next++;
    const watch: Watch = { target, cb, stop: undefined };
    this.#watches.set(w, watch);
    if (this.#db) watch.stop = this.#db.watch(target, cb);
    else this.#post({ k: "watch", from: this.#id, w, target });
    return () => {
      if (!this.#watches.delete(w)) return;
      if (watch.stop) watch.stop();
      else if (!this.#closed) this.#post({ k: "unwatch", from: this.#id, w });
    };
  }

  /** Closes this tab's side; the owner closes its Database and lets another tab take over. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    const error = new Error("The database is closed");
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
    this.#watches.clear();
    for (const stop of this.#served.values()) stop();
    this.#served.clear();
    const db = this.#db;
    this.#db = undefined;
    try {
      if (db) await db.close();
      else this.#post({ k: "bye", from: this.#id });
    } finally {
      pageEvents()?.removeEventListener("pagehide", this.#leaving);
      this.#channel?.close();
      this.#release();
    }
  }

  /** A take-over that failed: calls reject with `e` from now on. */
  #fail(e: unknown): void {
    this.#failed = e instanceof Error ? e : new Error(String(e));
    for (const p of this.#pending.values()) p.reject(this.#failed);
    this.#pending.clear();
  }

  /**
   * Makes this tab the owner: opens the Database (retrying while the old
   * owner's files are let go of, when `retry`), runs the calls still waiting
   * for an answer, moves the watches onto it and tells the other tabs.
   */
  async #takeOver(retry: boolean): Promise<void> {
    let db: Database | undefined;
    for (let i = 0; db === undefined; i++) {
      try {
        db = await this.#open();
      } catch (e) {
        if (!retry || i + 1 >= TAKE_OVER_TRIES) throw e;
        await new Promise<void>((resolve) => this.#world.setTimer(resolve, TAKE_OVER_WAIT_MS));
      }
      if (this.#closed) {
        await db?.close();
        return;
      }
    }
    // Where the database stood before this tab wrote anything: the other tabs' watches resume from there.
    const seq = await db.lastSeq();
    this.#db = db;
    for (const watch of this.#watches.values()) watch.stop = db.watch(watch.target, watch.cb);
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of waiting) runCall(db, p.m, p.a).then(p.resolve, p.reject);
    this.#post({ k: "owner", from: this.#id, seq });
  }

  #call(m: TabMethod, a: unknown[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error("The database is closed"));
    if (this.#db) return runCall(this.#db, m, a);
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { m, a, resolve, reject });
      this.#post({ k: "call", from: this.#id, id, m, a });
    });
  }

  /** The page goes (closed, or navigated away): a client tells the owner to drop its watches. */
  readonly #leaving = (): void => {
    if (!this.#closed && this.#db === undefined) this.#post({ k: "bye", from: this.#id });
  };

  #post(message: TabMessage): void {
    try {
      this.#channel?.postMessage(message);
    } catch {
      // The channel closed (this tab closing): the other tabs hear of it from the next owner.
    }
  }

  #hear(msg: TabMessage): void {
    // Another script of the origin may post anything on the channel: what is not a message is ignored.
    if (this.#closed || typeof msg !== "object" || msg === null) return;
    const db = this.#db;
    switch (msg.k) {
      case "call":
        if (db) this.#serve(db, msg.from, msg.id, msg.m, msg.a);
        return;
      case "watch":
        if (db) this.#serveWatch(db, msg.from, msg.w, msg.target, msg.after);
        return;
      case "unwatch":
        this.#served.get(`${msg.from} ${msg.w}`)?.();
        this.#served.delete(`${msg.from} ${msg.w}`);
        return;
      case "bye":
        this.#drop(msg.from);
        return;
      case "ans": {
        if (msg.to !== this.#id) return;
        const p = this.#pending.get(msg.id);
        if (p === undefined) return; // answered already (a call sent twice across a hand-over)
        this.#pending.delete(msg.id);
        if (msg.e !== undefined) p.reject(fromTabError(msg.e));
        else p.resolve(msg.v);
        return;
      }
      case "ev":
        if (msg.to === this.#id) this.#watches.get(msg.w)?.cb(msg.c);
        return;
      case "owner":
        // A new owner: the watches go to it (first: the calls sent again may change what they watch), and
        // what the old one left unanswered.
        for (const [w, watch] of this.#watches) {
          this.#post({ k: "watch", from: this.#id, w, target: watch.target, after: msg.seq });
        }
        for (const [id, p] of this.#pending) this.#post({ k: "call", from: this.#id, id, m: p.m, a: p.a });
        return;
    }
  }

  /** Stops the watches kept for tab `client`, which went. */
  #drop(client: string): void {
    for (const [key, stop] of this.#served) {
      if (key.startsWith(`${client} `)) {
        stop();
        this.#served.delete(key);
      }
    }
  }

  /** Waits (through tab `client`'s own lock, granted once it is gone) to drop its watches. */
  #watchClient(client: string): void {
    if (this.#locks === undefined || this.#clients.has(client)) return;
    this.#clients.add(client);
    this.#locks.request(`${this.#name}#${client}`, { signal: this.#abort.signal }, () => {
      this.#clients.delete(client);
      if (!this.#closed) this.#drop(client);
      return Promise.resolve();
    }).catch(() => {}); // aborted by close()
  }

  /** Keeps watch `w` of tab `to`; with `after`, first replays what changed after that commit (at least once). */
  #serveWatch(db: Database, to: string, w: number, target: WatchTarget, after: number | undefined): void {
    this.#watchClient(to);
    const key = `${to} ${w}`;
    this.#served.get(key)?.();
    const stop = db.watch(target, (c) => this.#post({ k: "ev", to, w, c }));
    this.#served.set(key, stop);
    if (after === undefined) return;
    const sink = {
      send: (c: Change) => this.#post({ k: "ev", to, w, c }),
      ended: () => this.#closed || this.#served.get(key) !== stop,
      afterPage: () => {},
    };
    replayChanges(db, target, { actor: db.actor, seq: after }, sink).catch(() => {}); // a closing owner
  }

  #serve(db: Database, from: string, id: number, m: TabMethod, a: unknown[]): void {
    // Once this tab is closing, calls are left unanswered: the caller sends them to the next owner.
    runCall(db, m, a).then(
      (v) => this.#closed || this.#post({ k: "ans", to: from, id, v }),
      (e) => this.#closed || this.#post({ k: "ans", to: from, id, e: toTabError(e) }),
    );
  }
}
