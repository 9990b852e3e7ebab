/**
 * The vector commands: `lattice search --vector JSON --k N [--field F]
 * [--where JSON] [--from SOUL [--follow FIELD]...] [--ef N] [--exact]` and `lattice index add FIELD --dim N [--metric M]` /
 * `lattice index list`, on the local database (--path) or a running node
 * (--url), through the same calls as the library. The command line is
 * checked before anything is opened (exit 2); what the database refuses as
 * an argument (a vector of another dimension, no index on the field, other
 * settings for a declared field) is a usage error too.
 *
 * @module
 */
import type { Database, IndexInfo } from "../core/database.ts";
import { toJson } from "../core/json.ts";
import type { Parsed } from "./args.ts";
import { parseCount, parseJsonArgument } from "./args.ts";
import { type Context, requireDatabase, withDatabase } from "./context.ts";
import { EXIT_OK, isValidationError, UsageError } from "./errors.ts";

type VectorDb = Pick<Database, "search" | "createIndex" | "close"> & {
  indexes(): IndexInfo[] | Promise<IndexInfo[]>;
};

/** Runs `use` on the database (or node) of `ctx`; argument errors of the database become usage errors. */
async function withVectors<T>(ctx: Context, command: string, use: (db: VectorDb) => Promise<T>): Promise<T> {
  requireDatabase(ctx);
  return await withDatabase(ctx, async (db) => {
    try {
      return await use(db as unknown as VectorDb);
    } catch (e) {
      if (isValidationError(e)) throw new UsageError(e.message, command);
      throw e;
    }
  });
}

function flag(p: Parsed, name: string): string | undefined {
  return p.flags.get(name) as string | undefined;
}

/** `lattice search`: the k nodes nearest the vector, one per line (soul, score, node). */
export async function search(ctx: Context, p: Parsed): Promise<number> {
  const text = flag(p, "vector"), k = flag(p, "k");
  if (text === undefined) throw new UsageError("search needs --vector JSON (an array of numbers)", "search");
  if (k === undefined) throw new UsageError("search needs --k N (how many results)", "search");
  let vector: unknown;
  try {
    vector = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`option --vector is not valid JSON: ${(e as Error).message}`, "search");
  }
  if (!Array.isArray(vector) || !vector.every((x) => typeof x === "number")) {
    throw new UsageError("option --vector must be a JSON array of numbers", "search");
  }
  const where = flag(p, "where"), ef = flag(p, "ef");
  const from = p.flags.get("from") as string[] | undefined;
  const follow = p.flags.get("follow") as string[] | undefined;
  if (follow !== undefined && from === undefined) {
    throw new UsageError("--follow needs --from SOUL (where the walk starts)", "search");
  }
  const s = {
    vector,
    k: parseCount("search", "k", k),
    field: flag(p, "field"),
    where: where === undefined ? undefined : parseJsonArgument("search", "--where", where) as never,
    from,
    path: follow,
    ef: ef === undefined ? undefined : parseCount("search", "ef", ef),
    exact: p.flags.has("exact") ? true : undefined,
  };
  const results = await withVectors(ctx, "search", (db) => db.search(s));
  for (const { soul, score, node } of results) {
    const data = toJson(node);
    await ctx.out.line(
      ctx.json ? JSON.stringify({ soul, score, node: data }) : `${soul}\t${score}\t${JSON.stringify(data)}`,
    );
  }
  return EXIT_OK;
}

/** `lattice index add FIELD --dim N [--metric M]` and `lattice index list`. */
export async function index(ctx: Context, p: Parsed): Promise<number> {
  const [action, field] = p.positionals;
  const dim = flag(p, "dim"), metric = flag(p, "metric");
  const line = (i: IndexInfo) =>
    ctx.json
      ? JSON.stringify(i)
      : `${i.field}\tdim ${i.dim}\t${i.metric}\t${i.count} vectors\t${
        i.building ? `building ${i.building.done}/${i.building.total}` : i.state
      }`;
  const graph = ["m", "ef-construction", "ef", "quantize"].filter((f) => p.flags.has(f));
  if (action === "list") {
    if (field !== undefined) {
      throw new UsageError(`index list takes no FIELD, got ${JSON.stringify(field)}`, "index");
    }
    if (dim !== undefined || metric !== undefined || graph.length > 0) {
      throw new UsageError(
        "options --dim, --metric, --m, --ef-construction, --ef and --quantize go with index add",
        "index",
      );
    }
    const list = await withVectors(ctx, "index", async (db) => await db.indexes());
    for (const i of list) await ctx.out.line(line(i));
    return EXIT_OK;
  }
  if (action !== "add") {
    throw new UsageError(`index takes add or list, got ${JSON.stringify(action)}`, "index");
  }
  if (field === undefined) throw new UsageError("index add needs FIELD", "index");
  if (dim === undefined) throw new UsageError("index add needs --dim N", "index");
  const count = (name: string) => {
    const v = flag(p, name);
    return v === undefined ? undefined : parseCount("index", name, v);
  };
  const options = {
    field,
    dim: parseCount("index", "dim", dim),
    metric: metric as never,
    m: count("m"),
    efConstruction: count("ef-construction"),
    ef: count("ef"),
    quantize: flag(p, "quantize") as never,
  };
  const info = await withVectors(ctx, "index", (db) => db.createIndex(options));
  await ctx.out.line(line(info));
  return EXIT_OK;
}
