// @server-only: a child process of http.test.ts
/**
 * Runs `serve` as `lattice serve` would: `deno run -A tests/_serve_child.ts
 * [--json] [--memory] [--no-auth] [DIR]` or `bun tests/_serve_child.ts …`.
 * Listens on 127.0.0.1 with a free port, prints the ready line, and exits 0
 * after a clean shutdown on SIGINT/SIGTERM.
 *
 * Not a test file (no `.test.` in its name).
 */
import process from "node:process";
import { open } from "../mod.ts";
import { serve } from "../net/serve.ts";

if (import.meta.main) {
  const args = process.argv.slice(2);
  const json = args.includes("--json"), memory = args.includes("--memory");
  const auth = !args.includes("--no-auth");
  const path = args.find((a) => !a.startsWith("--"));
  const db = await open({
    path: memory ? undefined : path,
    storage: memory ? "memory" : "auto",
    lockCommand: "lattice serve",
  });
  const node = await serve(db, { path, memory, json, auth, http: "127.0.0.1:0" });
  await node.done;
  process.exit(0);
}
