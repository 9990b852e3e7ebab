/**
 * The commands on the graph's data: `put`, `get`, `delete`, `list` and
 * `query`, each on the local database (--path) or a running node (--url)
 * through the same `Db` calls. Arguments are checked in full before anything
 * is opened, so that a bad one is a usage error (exit 2) and never a
 * half-done write; a missing node is exit 3.
 *
 * @module
 */
import type { Database } from "../core/database.ts";
import { toJson } from "../core/json.ts";
import { checkField, checkSoul, flatten } from "../core/value.ts";
import { mapVectors } from "../core/db/vector_value.ts";
import { parseJsonArgument } from "./args.ts";
import { type Context, requireDatabase, withDatabase } from "./context.ts";
import { checkArgument, CliError, EXIT_NOT_FOUND, EXIT_OK, isValidationError, UsageError } from "./errors.ts";

/** `lattice put SOUL JSON`: merges the JSON object's fields into node SOUL. */
export async function put(ctx: Context, soul: string, text: string): Promise<number> {
  checkArgument("put", "SOUL", () => checkSoul(soul));
  const data = parseJsonArgument("put", "JSON", text) as Record<string, unknown>;
  // Validate fully before opening anything, so that a bad argument is a usage error.
  // (Arrays are vectors for indexed fields: the database, once open, judges them.)
  checkArgument("put", "JSON", () => flatten(soul, mapVectors(data, () => new Uint8Array(0))));
  requireDatabase(ctx);
  const result = await withDatabase(ctx, async (db) => {
    try {
      return await db.put(soul, data);
    } catch (e) {
      if (isValidationError(e)) throw new UsageError(`argument JSON is invalid: ${e.message}`, "put");
      throw e;
    }
  });
  await ctx.out.line(
    ctx.json
      ? JSON.stringify({ soul: result.soul, state: result.state })
      : `Stored ${result.soul} at state ${result.state}`,
  );
  return EXIT_OK;
}

/** `lattice get SOUL`: prints the node as JSON (exit 3 if there is none). */
export async function get(ctx: Context, soul: string): Promise<number> {
  checkArgument("get", "SOUL", () => checkSoul(soul));
  requireDatabase(ctx);
  const data = await withDatabase(ctx, (db) => db.get(soul));
  if (data === undefined) throw new CliError(`Node ${JSON.stringify(soul)} not found.`, EXIT_NOT_FOUND);
  await ctx.out.line(JSON.stringify(toJson(data), null, ctx.json ? undefined : 2));
  return EXIT_OK;
}

/** `lattice delete SOUL [FIELD]`: deletes the node, or one of its fields (exit 3 if missing). */
export async function del(ctx: Context, soul: string, field: string | undefined): Promise<number> {
  checkArgument("delete", "SOUL", () => checkSoul(soul));
  if (field !== undefined) checkArgument("delete", "FIELD", () => checkField(field));
  requireDatabase(ctx);
  const result = await withDatabase(ctx, async (db) => {
    const data = await db.get(soul);
    if (data === undefined) throw new CliError(`Node ${JSON.stringify(soul)} not found.`, EXIT_NOT_FOUND);
    if (field !== undefined && !Object.hasOwn(data, field)) {
      throw new CliError(
        `Node ${JSON.stringify(soul)} has no field ${JSON.stringify(field)}.`,
        EXIT_NOT_FOUND,
      );
    }
    return await db.delete(soul, field);
  });
  if (ctx.json) {
    await ctx.out.line(JSON.stringify({ soul, field: field ?? null, state: result.state }));
  } else {
    const what = field === undefined ? soul : `field ${field} of ${soul}`;
    await ctx.out.line(`Deleted ${what} at state ${result.state}`);
  }
  return EXIT_OK;
}

/** `lattice list`: the souls (or, with --json, the nodes) in soul order. */
export async function list(
  ctx: Context,
  prefix: string | undefined,
  limit: number | undefined,
): Promise<number> {
  requireDatabase(ctx);
  await withDatabase(ctx, async (db) => {
    for await (const { soul, data } of db.list({ prefix, limit })) {
      await ctx.out.line(ctx.json ? JSON.stringify({ soul, data: toJson(data) }) : soul);
    }
  });
  return EXIT_OK;
}

/** `lattice query JSON`: runs a graph query as the library's `db.query`. */
export async function query(ctx: Context, text: string): Promise<number> {
  const q = parseJsonArgument("query", "JSON", text) as Parameters<Database["query"]>[0];
  requireDatabase(ctx);
  const results = await withDatabase(ctx, async (db) => {
    try {
      return await db.query(q);
    } catch (e) {
      // db.query checks the whole query before it reads anything.
      if (isValidationError(e)) {
        throw new UsageError(`argument JSON is not a valid query: ${e.message}`, "query");
      }
      throw e;
    }
  });
  for (const { soul, data } of results) {
    await ctx.out.line(
      ctx.json ? JSON.stringify({ soul, data: toJson(data) }) : `${soul}\t${JSON.stringify(toJson(data))}`,
    );
  }
  return EXIT_OK;
}
