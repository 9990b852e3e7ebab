/**
 * `lattice serve`: runs a node over an open database — networking (through
 * {@link ServeOptions.startNetwork}), the HTTP API and the inspector — until
 * SIGINT or SIGTERM, then shuts down cleanly: stops accepting requests, ends
 * event streams, lets requests in progress finish, stops networking, flushes
 * and closes the database. The caller (the CLI) opens the database and hands
 * it over, so this module depends on the network's and the database's types,
 * never on `mod.ts`.
 *
 * When ready it prints one line on standard output, as docs/API.md says:
 * `ready <http-url> <peer-id> <multiaddr>...` or, with `json`,
 * `{"ready":true,"http":…,"peerId":…,"addrs":[…],"token":…}`. Without
 * networking the peer id is printed as `-` (`null` in JSON) and there are no
 * multiaddrs.
 *
 * The HTTP API's bearer token (see `net/http.ts`) is `token` when given
 * (`--token`); else, for a directory, the one in `<dir>/http-token`, written
 * (mode 0600) when missing; else, in memory (`--memory`, or a directory where
 * the file cannot be written), a fresh one that only the `--json` ready line
 * tells. `auth: false` (`--no-auth`) serves without one and says so in the
 * log: a development node.
 *
 * @example
 * ```ts
 * import { open } from "../mod.ts";
 * import { serve } from "./serve.ts";
 * const db = await open({ storage: "memory", lockCommand: "lattice serve" });
 * const node = await serve(db, { memory: true, http: "127.0.0.1:0", handleSignals: false, stdout: () => {} });
 * console.log(node.url); // http://127.0.0.1:<a free port>
 * await node.close(); // closes the database too
 * ```
 *
 * @module
 */
import type { Database } from "../core/database.ts";
import type { World } from "../core/world.ts";
import { startHttpApi, type StatusExtras } from "./http.ts";
import { createLogger, type Logger } from "../runtime/log.ts";
import type { RunningNetwork } from "./network.ts";
import type { NetworkOptions } from "./network_options.ts";
import { checkToken, ensureTokenFile } from "./token.ts";

/** Options of {@link serve} (the flags of `lattice serve`). */
export interface ServeOptions {
  /** The database's directory (`--path`), where the token file lives; ignored with `memory`. */
  readonly path?: string;
  /** The database keeps data in memory only (`--memory`): the token, too, is kept in memory. */
  readonly memory?: boolean;
  /** `HOST:PORT` of the HTTP API (`--http`, default `127.0.0.1:7420`; port 0 picks a free one). */
  readonly http?: string;
  /** Print the ready line as JSON (`--json`). */
  readonly json?: boolean;
  /** Space to serve (`--space`, default `default`). */
  readonly space?: string;
  /** libp2p listen multiaddrs (`--listen`). */
  readonly listen?: readonly string[];
  /** Peers to join through (`--bootstrap`). */
  readonly bootstrap?: readonly string[];
  /** Replication factor (`--replication`) for sharded spaces. */
  readonly replication?: number;
  /** Find members of the space on the local network by mDNS (`--mdns`, default false). */
  readonly mdns?: boolean;
  /** Offer a circuit relay to peers that cannot be dialed, such as browsers (`--relay`, default false). */
  readonly relay?: boolean;
  /**
   * The networking hook: starts libp2p, DHT, gossip and sync for `db`
   * (`startNetwork` of net/network.ts, which the CLI passes: a hook, so that
   * a node without networking never loads libp2p). Without it the node runs
   * without networking (peer id `-`).
   */
  readonly startNetwork?: (db: Database, options: NetworkOptions) => Promise<RunningNetwork>;
  /** Writes the ready line (default: standard output). */
  readonly stdout?: (line: string) => void | Promise<void>;
  /** Stop on SIGINT/SIGTERM of this process (default true). */
  readonly handleSignals?: boolean;
  /** Aborting it stops the node, as a signal does. */
  readonly signal?: AbortSignal;
  /** Logger (default: `LATTICE_LOG` level to standard error). */
  readonly logger?: Logger;
  /** The HTTP API's bearer token (`--token`; default: `<dir>/http-token`, or a fresh one in memory). */
  readonly token?: string;
  /** `false` serves the HTTP API without authentication (`--no-auth`: a development node). */
  readonly auth?: boolean;
  /** Web origins whose pages may use the HTTP API (`--cors-origin`; default none). */
  readonly corsOrigins?: readonly string[];
  /** Host names served besides IP literals and localhost (`--allow-host`); see `net/http.ts`. */
  readonly hosts?: readonly string[];
  /** Clock and timers of the HTTP API and the network (default `systemWorld`). */
  readonly world?: World;
}

/** A running node. */
export interface ServeHandle {
  /** The HTTP API's base URL. */
  readonly url: string;
  /** Peer id, or `null` without networking. */
  readonly peerId: string | null;
  /** Listening multiaddrs. */
  readonly addrs: readonly string[];
  /** The database it serves. */
  readonly db: Database;
  /** The HTTP API's bearer token, or `null` without authentication. */
  readonly token: string | null;
  /** Resolves once the node has shut down (after a signal, `signal` or `close()`). */
  readonly done: Promise<void>;
  /** Shuts the node down cleanly. Idempotent. */
  close(): Promise<void>;
}

/** The default `--http`. */
export const DEFAULT_HTTP = "127.0.0.1:7420";

/**
 * Parses `HOST:PORT` (`[::1]:7420` for IPv6; `:PORT` means 127.0.0.1).
 * Throws `RangeError` for anything else.
 */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new RangeError(
      `--http must be HOST:PORT (e.g. 127.0.0.1:7420, :0 for a free port), got ${JSON.stringify(text)}`,
    );
  }
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/**
 * Starts a node over `db` and resolves once it is ready (after printing the
 * ready line). The node owns `db` from then on: it closes it when it shuts
 * down, or at once if it cannot start. Use `done` to wait for its end:
 * `lattice serve` opens the database, does `await (await serve(db,
 * options)).done` and exits 0.
 */
export async function serve(db: Database, options: ServeOptions = {}): Promise<ServeHandle> {
  let network: RunningNetwork | undefined;
  let api: Awaited<ReturnType<typeof startHttpApi>> | undefined;
  const log = options.logger ?? createLogger();
  const space = options.space ?? "default";
  try {
    const { host, port } = parseHostPort(options.http ?? DEFAULT_HTTP);
    if (
      !options.startNetwork && ((options.listen?.length ?? 0) > 0 || (options.bootstrap?.length ?? 0) > 0)
    ) {
      log.warn("serve", "networking is not available in this version: --listen and --bootstrap are ignored");
    }
    if (options.startNetwork) {
      network = await options.startNetwork(db, {
        listen: options.listen ?? [],
        bootstrap: options.bootstrap ?? [],
        space,
        replication: options.replication,
        mdns: options.mdns ?? false,
        relay: options.relay ?? false,
        logger: log,
        world: options.world,
        directory: options.memory ? undefined : options.path,
      });
    }
    const net = network;
    const info = async (): Promise<StatusExtras> => ({
      peerId: net?.peerId ?? null,
      addrs: net?.addrs() ?? [],
      space,
      peers: net ? await net.peers() : [],
      ...(net?.node.relay() ? { relay: net.node.relay() } : {}),
    });
    const token = await serveToken(options, log);
    api = await startHttpApi(db, {
      host,
      port,
      info,
      logger: log,
      auth: options.auth,
      token,
      corsOrigins: options.corsOrigins,
      hosts: options.hosts,
      world: options.world,
    });
    if (api.token === null) {
      log.warn(
        "serve",
        `authentication is off (--no-auth): anyone who can reach ${api.url} may read and write (a development node)`,
      );
    }
  } catch (e) {
    await network?.stop().catch(() => {});
    await db.close().catch(() => {});
    throw e;
  }
  const http = api;

  let finished!: () => void;
  const done = new Promise<void>((resolve) => finished = resolve);
  let closing: Promise<void> | undefined;
  const proc = options.handleSignals === false ? undefined : await processModule();
  let signals = 0;
  const onSignal = (name: string) => {
    signals++;
    if (signals > 1) {
      log.warn("serve", `second ${name} during shutdown: exiting at once`);
      proc?.exit(1);
    }
    log.info("serve", `${name}: shutting down`);
    void close();
  };
  const onInt = () => onSignal("SIGINT"), onTerm = () => onSignal("SIGTERM");
  const close = (): Promise<void> => {
    closing ??= (async () => {
      try {
        await http.close();
        await network?.stop().catch((e) =>
          log.warn("serve", "stopping the network failed", { error: String(e) })
        );
        await db.close();
        log.info("serve", "stopped");
      } finally {
        proc?.off("SIGINT", onInt);
        proc?.off("SIGTERM", onTerm);
        finished();
      }
    })();
    return closing;
  };
  proc?.on("SIGINT", onInt);
  proc?.on("SIGTERM", onTerm);
  if (options.signal) {
    if (options.signal.aborted) void close();
    else options.signal.addEventListener("abort", () => void close(), { once: true });
  }

  const peerId = network?.peerId ?? null;
  const addrs = network?.addrs() ?? [];
  const line = options.json
    ? JSON.stringify({
      ready: true,
      http: http.url,
      peerId,
      addrs,
      token: http.token,
      ...(network?.node.relay() ? { relay: true } : {}),
    })
    : ["ready", http.url, peerId ?? "-", ...addrs].join(" ");
  const write = options.stdout ?? (async (text: string) => {
    const p = await processModule();
    await new Promise<void>((resolve) => p.stdout.write(text + "\n", () => resolve()));
  });
  await write(line);
  return { url: http.url, peerId, addrs, db, done, close, token: http.token };
}

/** The token for the HTTP API (see the module doc); `undefined` lets the API make one in memory. */
async function serveToken(options: ServeOptions, log: Logger): Promise<string | undefined> {
  if (options.auth === false) {
    if (options.token !== undefined) throw new TypeError("A token makes no sense without authentication");
    return undefined;
  }
  if (options.token !== undefined) return checkToken(options.token, "The token (--token)");
  if (options.memory || options.path === undefined) {
    log.info("serve", "the HTTP API token is kept in memory: the --json ready line gives it");
    return undefined;
  }
  try {
    const file = await ensureTokenFile(options.path);
    if (file.created) log.info("serve", "wrote the HTTP API token", { path: file.path });
    if (file.exposed) {
      log.warn("serve", `${file.path} can be read by other users; chmod 600 it so that only you can write`);
    }
    return file.token;
  } catch (e) {
    // A full or read-only disk must not keep the node from starting: this run's token lives in memory.
    log.warn(
      "serve",
      `cannot read or write the HTTP API token in ${options.path} (${(e as Error).message}); ` +
        "this run's token is only in the --json ready line",
    );
    return undefined;
  }
}

type ProcessModule = typeof import("node:process");

async function processModule(): Promise<ProcessModule> {
  const specifier = "node:process";
  return (await import(specifier) as { default: ProcessModule }).default;
}
