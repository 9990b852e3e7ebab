/**
 * `lattice init`: creates the database directory (if needed), its identity
 * (`identity.json`, storage/identity_file.ts) and its HTTP token file, and
 * shows the path, storage engine, actor id and identity. The one command
 * that creates a database: the others refuse a directory without one
 * (cli/context.ts `requireDatabase`), so that a mistyped --path fails.
 *
 * @module
 */
import { join } from "node:path";
import { DB_FILE } from "../storage/sqlite.ts";
import { ensureTokenFile } from "../net/token.ts";
import { inspectIdentityFile, PASSPHRASE_ENV, writeIdentityFile } from "../storage/identity_file.ts";
import type { OpenedDatabase } from "../mod.ts";
import { type Context, withLocalDatabase } from "./context.ts";
import { CliError, EXIT_ERROR, EXIT_OK } from "./errors.ts";
import { passphraseOf } from "./identity.ts";

/** Runs `lattice init` on `ctx.path`; `encrypt` (`--encrypt`) seals the identity with `LATTICE_PASSPHRASE`. */
export async function init(ctx: Context, encrypt = false): Promise<number> {
  const kind = ctx.host.pathKind(ctx.path);
  if (kind === "file") throw new CliError(`${ctx.path} is a file, not a database directory.`, EXIT_ERROR);
  const passphrase = passphraseOf(ctx);
  if (encrypt && passphrase === undefined) {
    throw new CliError(
      `--encrypt needs the passphrase in ${PASSPHRASE_ENV}; set it and run init again`,
      EXIT_ERROR,
    );
  }
  const created = kind === "missing" || ctx.host.pathKind(join(ctx.path, DB_FILE)) !== "file";
  // Opening creates the directory (and its parents) and the identity, sealed when a passphrase is set.
  const { storage, actor, identity, encrypted } = await withLocalDatabase(ctx, async (db) => {
    const identity = (db as OpenedDatabase).identity;
    let encrypted = (await inspectIdentityFile(ctx.path))?.encrypted ?? false;
    if (encrypt && identity && !encrypted) {
      // Still holding the directory: no other opener reads the file while it is replaced.
      await writeIdentityFile(ctx.path, identity, { passphrase, replace: true });
      encrypted = true;
    }
    return { storage: db.storage, actor: db.actor, identity: identity?.id ?? null, encrypted };
  });
  // Written after the database: the directory exists now, and a directory in use has already failed.
  const tokenFile = (await ensureTokenFile(ctx.path)).path;
  if (ctx.json) {
    await ctx.out.line(
      JSON.stringify({ path: ctx.path, created, storage, actor, tokenFile, identity, encrypted }),
    );
  } else {
    await ctx.out.line(
      created ? `Created a new database in ${ctx.path}` : `A database is already in ${ctx.path}`,
    );
    await ctx.out.line(`storage: ${storage}`);
    await ctx.out.line(`actor:   ${actor}`);
    await ctx.out.line(`token:   ${tokenFile} (for lattice serve; other commands read it with --path)`);
    await ctx.out.line(`identity: ${identity ?? "-"}${encrypted ? " (encrypted)" : ""}`);
  }
  return EXIT_OK;
}
