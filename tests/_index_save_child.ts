// @server-only: a child process of sync_index_save.test.ts
/**
 * Run as `deno run -A tests/_index_save_child.ts DIR` or
 * `bun tests/_index_save_child.ts DIR`: opens DIR (which holds
 * {@link BASE} records), starts the network with a small periodic-save
 * threshold ({@link EVERY} records), writes {@link SAVED} records in one
 * commit and waits for the sync index to save itself (the tag of its file
 * in the store's metadata changes) while the network runs, then writes
 * {@link AFTER} more (below the threshold) and prints `done SAVED_OK`
 * (`true` if a periodic save was seen within 10 s). Then it waits to be
 * killed: the parent SIGKILLs it and rebuilds the index from DIR.
 *
 * Not a test file (no `.test.` in its name).
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { open } from "../mod.ts";
import { AUX_NAME } from "../core/sync/saved_index.ts";
import { startNetwork } from "../net/network.ts";
import { createLogger } from "../runtime/log.ts";
import { runtimeName } from "../runtime/detect.ts";
import { ACTOR_A, ACTOR_B, userOp } from "./_sync_fixture.ts";
import { storeOf } from "../core/database.ts";

/** Records in DIR before the child starts (users 0..BASE/2, two fields each). */
export const BASE = 20_000;
/** Periodic-save threshold the child's network uses. */
export const EVERY = 1_000;
/** Records written in one commit, then covered by a periodic save. */
export const SAVED = 3_000;
/** Records written after that save (fewer than EVERY: no save follows). */
export const AFTER = 400;

/** The ops of DIR before the child starts. */
export function baseOps(): ReturnType<typeof userOp>[] {
  return Array.from({ length: BASE / 2 }, (_, i) => [userOp(i, 0, 1, ACTOR_A), userOp(i, 1, 1, ACTOR_A)])
    .flat();
}

async function run(dir: string): Promise<void> {
  const db = await open({ path: dir });
  const tag = () => storeOf(db).getMeta(`aux.${AUX_NAME}`);
  const net = await startNetwork(db, {
    space: "idxsave",
    listen: [],
    bootstrap: [],
    logger: createLogger({ level: "silent" }),
    indexSave: { records: EVERY, intervalMs: 20 },
  });
  const wait = async (until: () => Promise<boolean>): Promise<boolean> => {
    for (const end = Date.now() + 10_000; Date.now() < end;) {
      if (await until()) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  };
  await wait(async () => (await tag()) !== undefined); // the first start saves its full build
  const first = await tag();
  // Replacements of half the base records' first field (new versions), one commit.
  await db.applyOps(Array.from({ length: SAVED }, (_, i) => userOp(i, 0, 2, ACTOR_B)));
  const saved = await wait(async () => (await tag()) !== first);
  // New users, one field each: below the threshold, so no save covers them.
  await db.applyOps(Array.from({ length: AFTER }, (_, i) => userOp(BASE + i, 2, 1, ACTOR_B)));
  await db.idle();
  process.stdout.write(`done ${saved}\n`);
  setInterval(() => {}, 60_000);
  void net;
}

if (import.meta.main) await run(process.argv[2]);

/** The command line that runs this file with `args` on the current runtime (same executable). */
export function childCommand(args: readonly string[]): [string, string[]] {
  const script = fileURLToPath(import.meta.url);
  return runtimeName() === "deno"
    ? [process.execPath, ["run", "-A", script, ...args]]
    : [process.execPath, [script, ...args]];
}
