/**
 * `lattice init`: creates the database directory (if needed) and its HTTP
 * token file, and shows the path, storage engine and actor id. The one
 * command that creates a database: the others refuse a directory without
 * one (cli/context.ts `requireDatabase`), so that a mistyped --path fails.
 *
 * @module
 */
import { join } from "node:path";
import { DB_FILE } from "../storage/sqlite.ts";
import { ensureTokenFile } from "../net/token.ts";
import { type Context, withLocalDatabase } from "./context.ts";
import { CliError, EXIT_ERROR, EXIT_OK } from "./errors.ts";

/** Runs `lattice init` on `ctx.path`. */
export async function init(ctx: Context): Promise<number> {
  const kind = ctx.host.pathKind(ctx.path);
  if (kind === "file") throw new CliError(`${ctx.path} is a file, not a database directory.`, EXIT_ERROR);
  const created = kind === "missing" || ctx.host.pathKind(join(ctx.path, DB_FILE)) !== "file";
  // Opening creates the directory (and its parents).
  const { storage, actor } = await withLocalDatabase(
    ctx,
    (db) => Promise.resolve({ storage: db.storage, actor: db.actor }),
  );
  // Written after the database: the directory exists now, and a directory in use has already failed.
  const tokenFile = (await ensureTokenFile(ctx.path)).path;
  if (ctx.json) {
    await ctx.out.line(JSON.stringify({ path: ctx.path, created, storage, actor, tokenFile }));
  } else {
    await ctx.out.line(
      created ? `Created a new database in ${ctx.path}` : `A database is already in ${ctx.path}`,
    );
    await ctx.out.line(`storage: ${storage}`);
    await ctx.out.line(`actor:   ${actor}`);
    await ctx.out.line(`token:   ${tokenFile} (for lattice serve; other commands read it with --path)`);
  }
  return EXIT_OK;
}
