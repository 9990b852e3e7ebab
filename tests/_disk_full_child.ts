// @server-only: a child process of disk_full.test.ts
/**
 * Run as `deno run -A tests/_disk_full_child.ts reopen DIR KEY...` or
 * `bun tests/_disk_full_child.ts reopen DIR KEY...`: a restart on a full
 * disk. Opens DIR with `open({ path })` and prints one JSON line
 * `{count, got: {KEY: n}, put}` (the live node count, field `n` of each
 * KEY, and how a put went: `"ok"` or the error's name and message), or
 * `{open: {name, message}}` when it cannot open. Then it waits for a line on
 * stdin (the test frees space meanwhile), puts again, prints `{put}`,
 * closes and exits 0.
 *
 * Not a test file (no `.test.` in its name).
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { open } from "../mod.ts";
import { runtimeName } from "../runtime/detect.ts";

function out(v: unknown): void {
  process.stdout.write(JSON.stringify(v) + "\n");
}

async function put(db: Awaited<ReturnType<typeof open>>, soul: string): Promise<unknown> {
  try {
    await db.put(soul, { after: "restart" });
    return "ok";
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  }
}

async function reopen(dir: string, keys: string[]): Promise<void> {
  let db: Awaited<ReturnType<typeof open>>;
  try {
    db = await open({ path: dir });
  } catch (e) {
    out({ open: { name: (e as Error).name, message: (e as Error).message } });
    return;
  }
  const got: Record<string, unknown> = {};
  for (const k of keys) got[k] = (await db.get(k))?.n;
  out({ count: await db.countNodes(), got, put: await put(db, "restart/1") });
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once("line", () => resolve()));
  lines.close();
  out({ put: await put(db, "restart/2") });
  await db.close();
}

if (import.meta.main) {
  const [mode, dir, ...args] = process.argv.slice(2);
  if (mode === "reopen") await reopen(dir, args);
  else {
    console.error(`Unknown mode ${JSON.stringify(mode)}: use reopen`);
    process.exit(2);
  }
}

/** The command line that runs this file with `args` on the current runtime (same executable). */
export function childCommand(args: readonly string[]): [string, string[]] {
  const script = fileURLToPath(import.meta.url);
  return runtimeName() === "deno"
    ? [process.execPath, ["run", "-A", script, ...args]]
    : [process.execPath, [script, ...args]];
}
