/**
 * One process owns a database directory. Owning means having created
 * `<dir>/LOCK` exclusively (`wx`, i.e. `O_CREAT|O_EXCL`); the file holds JSON
 * `{pid, host, command, since}` so that the next opener can say who holds it.
 *
 * A lock is stale, and is taken over, when its holder is certainly gone:
 * its pid is not running on this host (a zombie — exited, not yet reaped by
 * its parent, as for a moment after SIGKILL — is not running, although
 * `kill(pid, 0)` finds it: storage/_host.ts tells it apart), the host has rebooted since it was
 * taken, or it names this very process although this process does not hold
 * it (a previous incarnation with the same pid, as in containers where the
 * server is always pid 1). Otherwise opening fails with {@link LockedError}.
 * Locks from another host are never taken over.
 *
 * The lock is released by {@link DirectoryLock.release} and, best effort, when
 * the process exits normally; after SIGKILL or a crash it is left behind and
 * found stale by the next opener.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { DirectoryLock } from "./lock.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "lattice-"));
 * const lock = await DirectoryLock.acquire(dir);
 * try {
 *   await DirectoryLock.acquire(dir);
 * } catch (e) {
 *   console.log((e as Error).name); // "LockedError"
 * }
 * lock.release();
 * rmSync(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { type Host, loadHost } from "./_host.ts";
import { asDiskFull } from "./disk_full.ts";
import { sleep, systemWorld, type World } from "../core/world.ts";

/**
 * Who holds a database directory, as written in its `LOCK` file.
 *
 * @example
 * ```ts
 * import { LockedError, type LockHolder, open } from "../mod.ts";
 * const path = await Deno.makeTempDir();
 * const db = await open({ path, lockCommand: "my-app" });
 * try {
 *   await open({ path }); // a second opener of the directory
 * } catch (e) {
 *   const holder: LockHolder = (e as LockedError).holder;
 *   console.log(holder.command, holder.pid === Deno.pid); // my-app true
 * }
 * await db.close();
 * await Deno.remove(path, { recursive: true });
 * ```
 */
export interface LockHolder {
  /** Process id of the holder. */
  readonly pid: number;
  /** Host name of the holder's machine. */
  readonly host: string;
  /** The holder's command line (or what it called itself), for people. */
  readonly command: string;
  /** When the lock was taken (ISO 8601). */
  readonly since: string;
}

/**
 * Thrown when a database directory is in use by another process (or another open in this one).
 *
 * @example
 * ```ts
 * import { open } from "../mod.ts";
 * const path = await Deno.makeTempDir();
 * const db = await open({ path });
 * await open({ path }).catch((e) => console.log(e.name, e.dir === path)); // LockedError true
 * await db.close();
 * await Deno.remove(path, { recursive: true });
 * ```
 */
export class LockedError extends Error {
  override readonly name = "LockedError";
  /** The directory that is locked, as given. */
  readonly dir: string;
  /** Who holds it. */
  readonly holder: LockHolder;

  constructor(dir: string, holder: LockHolder) {
    const where = holder.host === host?.hostname ? "" : ` on host ${holder.host}`;
    super(
      `Database directory ${dir} is in use by process ${holder.pid}${where} (${holder.command}, since ${holder.since})`,
    );
    this.dir = dir;
    this.holder = holder;
  }
}

/** Options of {@link DirectoryLock.acquire}. */
export interface AcquireOptions {
  /** What to call the holder in the lock file (default: the process's command line). */
  readonly command?: string;
  /** Clock, timers and randomness (default: {@link systemWorld}). */
  readonly world?: World;
}

let host: Host;
let loaded: Promise<void> | undefined;

function load(): Promise<void> {
  return loaded ??= loadHost().then((h) => {
    host = h;
  });
}

/**
 * Directories locked by this process, shared through a global so that two
 * copies of this module in one process (bundles) still see each other.
 */
const held: Map<string, DirectoryLock> = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("lattice.storage.locks")
] ??= new Map()) as Map<string, DirectoryLock>;
let exitHook = false;

/** Attempts before giving up when the lock file keeps changing under us. */
const ATTEMPTS = 20;

/** A held directory lock. */
export class DirectoryLock {
  /** The directory, as given. */
  readonly dir: string;
  /** The `LOCK` file's path. */
  readonly file: string;
  /** What this process wrote into the lock file. */
  readonly holder: LockHolder;
  #key: string;
  #released = false;

  private constructor(dir: string, file: string, key: string, holder: LockHolder) {
    this.dir = dir;
    this.file = file;
    this.#key = key;
    this.holder = holder;
  }

  /**
   * Takes the lock of directory `dir` (which must exist), taking over a stale
   * one. Throws {@link LockedError} when another live process, or another
   * open in this process, holds it.
   */
  static async acquire(dir: string, options: AcquireOptions = {}): Promise<DirectoryLock> {
    await load();
    const world = options.world ?? systemWorld;
    const key = host.resolve(dir);
    const file = host.join(dir, "LOCK");
    const mine: LockHolder = {
      pid: host.pid,
      host: host.hostname,
      command: options.command ?? commandLine(),
      since: new Date(world.now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
    };
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const other = held.get(key);
      if (other) throw new LockedError(dir, other.holder);
      if (tryCreate(file, mine)) {
        const lock = new DirectoryLock(dir, file, key, mine);
        held.set(key, lock);
        if (!exitHook) {
          exitHook = true;
          host.onExit(releaseAllSync);
        }
        return lock;
      }
      const found = readHolder(file);
      if (found === "missing") continue; // released meanwhile: try again
      if (found === "unreadable") {
        // Being written right now, or left empty by a crash between create and write.
        if (attempt < ATTEMPTS / 2) {
          await sleep(world, 10);
          continue;
        }
        takeOver(file, undefined, world);
        continue;
      }
      if (!isStale(found)) throw new LockedError(dir, found);
      takeOver(file, found, world);
    }
    throw new Error(`Cannot lock database directory ${dir}: its LOCK file keeps changing`);
  }

  /** Releases the lock (removes the file if it is still ours). Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (held.get(this.#key) === this) held.delete(this.#key);
    const found = readHolder(this.file);
    if (typeof found === "object" && sameHolder(found, this.holder)) {
      try {
        host.fs.unlinkSync(this.file);
      } catch {
        // already gone
      }
    }
  }
}

function releaseAllSync(): void {
  for (const lock of [...held.values()]) {
    try {
      lock.release();
    } catch {
      // best effort at exit
    }
  }
}

/** Creates `file` exclusively with `holder` in it; false when it exists. */
function tryCreate(file: string, holder: LockHolder): boolean {
  let fd: number;
  try {
    fd = host.fs.openSync(file, "wx", 0o644);
  } catch (e) {
    if ((e as { code?: string }).code === "EEXIST") return false;
    throw e;
  }
  try {
    const bytes = new TextEncoder().encode(JSON.stringify(holder) + "\n");
    for (let off = 0; off < bytes.length;) off += host.fs.writeSync(fd, bytes, off, bytes.length - off);
    host.fs.fsyncSync(fd);
  } catch (e) {
    // An empty LOCK would look like one being written: leave none (a full disk, say).
    host.fs.closeSync(fd);
    fd = -1;
    try {
      host.fs.unlinkSync(file);
    } catch {
      // then it is an unreadable LOCK, which the next opener takes over after a while
    }
    throw asDiskFull(
      e,
      host.resolve(file + "/.."),
      "lock the database directory",
      "; free a few KiB to open it",
    );
  } finally {
    if (fd >= 0) host.fs.closeSync(fd);
  }
  return true;
}

function readHolder(file: string): LockHolder | "missing" | "unreadable" {
  let text: string;
  try {
    text = new TextDecoder().decode(host.fs.readFileSync(file));
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return "missing";
    throw e;
  }
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (
      typeof v === "object" && v !== null && Number.isSafeInteger(v.pid) && typeof v.host === "string" &&
      typeof v.command === "string" && typeof v.since === "string"
    ) return { pid: v.pid!, host: v.host, command: v.command, since: v.since };
  } catch {
    // fall through
  }
  return "unreadable";
}

const sameHolder = (a: LockHolder, b: LockHolder): boolean =>
  a.pid === b.pid && a.host === b.host && a.since === b.since && a.command === b.command;

/** Whether the holder is certainly gone. */
function isStale(h: LockHolder): boolean {
  if (h.host !== host.hostname) return false; // cannot tell: never steal across machines
  const since = Date.parse(h.since);
  // Taken before this host last booted (a minute of slack for clock steps).
  if (Number.isFinite(since) && since < host.bootTime - 60_000) return true;
  if (h.pid === host.pid) return true; // not in `held` (checked before), so a previous process with our pid
  return !host.isAlive(h.pid);
}

/**
 * Removes a stale lock file, making sure it is the one judged stale: it is
 * first renamed aside (atomic), then checked; if another opener replaced the
 * stale file meanwhile, that live lock is put back (`link` never overwrites).
 */
function takeOver(file: string, stale: LockHolder | undefined, world: World): void {
  const aside = `${file}.stale-${host.pid}-${randomSuffix(world)}`;
  try {
    host.fs.renameSync(file, aside);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return;
    throw e;
  }
  const moved = readHolder(aside);
  const isTheStaleOne = stale === undefined
    ? typeof moved !== "object"
    : typeof moved === "object" && sameHolder(moved, stale);
  if (!isTheStaleOne) {
    try {
      host.fs.linkSync(aside, file);
    } catch {
      // someone else holds it now, which the next attempt will find
    }
  }
  try {
    host.fs.unlinkSync(aside);
  } catch {
    // gone already
  }
}

function commandLine(): string {
  const [exe = "", script, ...args] = host.argv;
  const parts = script === undefined ? [host.basename(exe)] : [host.basename(script), ...args];
  const text = parts.join(" ");
  return text.length > 200 ? text.slice(0, 199) + "…" : text;
}

/** A random name part: 8 hex digits. */
function randomSuffix(world: World): string {
  let s = "";
  for (const b of world.randomBytes(new Uint8Array(4))) s += b.toString(16).padStart(2, "0");
  return s;
}
