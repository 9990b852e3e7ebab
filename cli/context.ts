/**
 * What a command works on: the {@link Context} of one run (host, output,
 * database directory, node URL and token), and opening what it names: the
 * database directory `--path` directly, or a running node's HTTP API with
 * `--url`. A directory held by another process is waited for a moment (a
 * script running several `lattice put` at once), then reported.
 *
 * @module
 */
import { join } from "node:path";
import { open } from "../mod.ts";
import type { Database } from "../core/database.ts";
import { sleep, systemWorld } from "../core/world.ts";
import { DB_FILE } from "../storage/sqlite.ts";
import { connect, type RemoteDatabase } from "../net/client.ts";
import { checkToken, readTokenFile } from "../net/token.ts";
import type { CliHost } from "./host.ts";
import type { Printer } from "./output.ts";
import { CliError, EXIT_ERROR, isValidationError } from "./errors.ts";

/** One run of a command: where its output goes and what it works on. */
export interface Context {
  readonly host: CliHost;
  readonly out: Printer;
  readonly json: boolean;
  /** Absolute database directory. */
  readonly path: string;
  /** The running node to talk to (`--url`), instead of opening `path`. */
  readonly url?: string;
  /** The node's token for `url`, when one was found. */
  readonly token?: string;
}

/** The token for `--url`: `--token`, else `$LATTICE_TOKEN`, else `<path>/http-token` if it exists. */
export async function urlToken(
  flag: string | undefined,
  host: CliHost,
  path: string,
): Promise<string | undefined> {
  if (flag !== undefined) return flag;
  const env = host.env("LATTICE_TOKEN");
  if (env) {
    try {
      return checkToken(env, "LATTICE_TOKEN");
    } catch (e) {
      throw new CliError((e as Error).message, EXIT_ERROR);
    }
  }
  if (host.pathKind(path) !== "directory") return undefined;
  try {
    return await readTokenFile(path);
  } catch (e) {
    if (isValidationError(e)) throw new CliError(e.message, EXIT_ERROR);
    throw e;
  }
}

/**
 * How long a command waits for a directory held by another process before
 * giving up: long enough for another one-shot command (a script running
 * several `lattice put` at once) to finish, short enough not to hang on a
 * running node.
 */
const LOCK_WAIT_MS = 2000;

/** Opens the database at `ctx.path`, waiting up to {@link LOCK_WAIT_MS} for another process to let go of it. */
export async function openDatabase(ctx: Context): Promise<Database> {
  const deadline = systemWorld.now() + LOCK_WAIT_MS;
  for (let pause = 20;; pause = Math.min(pause * 2, 200)) {
    try {
      // An empty LATTICE_PASSPHRASE counts as none.
      return await open({ path: ctx.path, passphrase: ctx.host.env("LATTICE_PASSPHRASE") || undefined });
    } catch (e) {
      if (e instanceof Error && e.name === "LockedError" && systemWorld.now() + pause < deadline) {
        await sleep(systemWorld, pause);
        continue;
      }
      // Bad settings (e.g. LATTICE_KERNELS) are the user's to fix, not bugs.
      if (isValidationError(e)) throw new CliError(`Cannot open ${ctx.path}: ${e.message}`, EXIT_ERROR);
      throw e;
    }
  }
}

/** What commands use of a database: the local `Database` or a running node's (`--url`). */
export type Db = Pick<Database, "put" | "get" | "delete" | "list" | "query" | "close">;

/** Opens the database at `ctx.path` (or connects to `ctx.url`), runs `use`, and closes it whatever happens. */
export async function withDatabase<T>(ctx: Context, use: (db: Db) => Promise<T>): Promise<T> {
  const db: Db = ctx.url !== undefined ? connect(ctx.url, { token: ctx.token }) : await openDatabase(ctx);
  let result: T;
  try {
    result = await use(db);
  } catch (e) {
    await db.close().catch(() => {}); // the first error is the one to report
    throw e;
  }
  await db.close();
  return result;
}

/** Fails unless `ctx.path` holds a database: commands other than init never create one. */
export function requireDatabase(ctx: Context): void {
  if (ctx.url !== undefined) return; // the node has its database
  const kind = ctx.host.pathKind(ctx.path);
  if (kind === "file") throw new CliError(`${ctx.path} is a file, not a database directory.`, EXIT_ERROR);
  if (kind === "missing" || ctx.host.pathKind(join(ctx.path, DB_FILE)) !== "file") {
    throw new CliError(
      `No database at ${ctx.path}; create one with "lattice init --path ${ctx.path}" or choose another --path.`,
      EXIT_ERROR,
    );
  }
}

/** Opens the database at `ctx.path` (never a remote one), runs `use`, and closes it. */
export async function withLocalDatabase<T>(ctx: Context, use: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(ctx);
  try {
    return await use(db);
  } finally {
    await db.close();
  }
}

/** Connects to the running node `ctx.url`, runs `use`, and closes the connection. */
export async function withNode<T>(ctx: Context, use: (node: RemoteDatabase) => Promise<T>): Promise<T> {
  const node = connect(ctx.url as string, { token: ctx.token });
  try {
    return await use(node);
  } finally {
    await node.close();
  }
}
