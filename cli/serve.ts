/**
 * `lattice serve`: checks the flags of a node (as usage errors, before
 * anything starts) and runs one through net/serve.ts until SIGINT or
 * SIGTERM, with the network of net/network.ts.
 *
 * @module
 */
import { open } from "../mod.ts";
import { DEFAULT_HTTP, parseHostPort, serve } from "../net/serve.ts";
import { startNetwork } from "../net/network.ts";
import { checkCorsOrigin, checkServedHost } from "../net/http.ts";
import { parseCount, type Parsed } from "./args.ts";
import type { Context } from "./context.ts";
import { checkArgument, CliError, EXIT_ERROR, EXIT_OK, isValidationError, UsageError } from "./errors.ts";

/** Runs a node until SIGINT/SIGTERM (see net/serve.ts). */
export async function serveCommand(ctx: Context, p: Parsed): Promise<number> {
  const http = (p.flags.get("http") as string | undefined) ?? DEFAULT_HTTP;
  try {
    parseHostPort(http);
  } catch (e) {
    throw new UsageError((e as Error).message, "serve");
  }
  const replication = p.flags.has("replication")
    ? parseCount("serve", "replication", p.flags.get("replication") as string)
    : undefined;
  const memory = p.flags.has("memory");
  const corsOrigins = (p.flags.get("cors-origin") as string[] | undefined) ?? [];
  const hosts = (p.flags.get("allow-host") as string[] | undefined) ?? [];
  for (const o of corsOrigins) checkArgument("serve", "--cors-origin", () => checkCorsOrigin(o));
  for (const h of hosts) checkArgument("serve", "--allow-host", () => checkServedHost(h));
  const space = p.flags.get("space") as string | undefined;
  let node: Awaited<ReturnType<typeof serve>>;
  try {
    const db = await open({
      // Signatures cover the space: the node's writes are signed for the one it serves.
      space: space ?? "default",
      path: memory ? undefined : ctx.path,
      storage: memory ? "memory" : "auto",
      lockCommand: "lattice serve",
    });
    node = await serve(db, {
      path: memory ? undefined : ctx.path,
      memory,
      http,
      json: ctx.json,
      space,
      listen: (p.flags.get("listen") as string[] | undefined) ?? [],
      bootstrap: (p.flags.get("bootstrap") as string[] | undefined) ?? [],
      replication,
      mdns: p.flags.has("mdns"),
      relay: p.flags.has("relay"),
      startNetwork,
      stdout: (line) => ctx.host.stdout(line + "\n"),
      token: p.flags.get("token") as string | undefined,
      auth: !p.flags.has("no-auth"),
      corsOrigins,
      hosts,
    });
  } catch (e) {
    if (isValidationError(e)) throw new CliError(`Cannot start the node: ${e.message}`, EXIT_ERROR);
    throw e; // LockedError, EADDRINUSE, …: report() words them
  }
  await node.done;
  return EXIT_OK;
}
