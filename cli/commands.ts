/**
 * The commands and flags of the CLI as tables, and the help texts made from
 * them: `lattice help`, `lattice help COMMAND`, `lattice COMMAND --help`.
 * The parser (cli/args.ts) checks the command line against these tables, and
 * tests/api_doc.test.ts checks docs/API.md against them: a command or flag
 * added here must be documented there.
 *
 * @module
 */
import { DEFAULT_HTTP } from "../net/serve.ts";
import { VERSION } from "../version.ts";

export interface FlagSpec {
  /** Takes a value (`--flag value` or `--flag=value`). */
  readonly value: boolean;
  /** May be given more than once. */
  readonly repeat?: boolean;
}

export const FLAGS: Readonly<Record<string, FlagSpec>> = {
  path: { value: true },
  url: { value: true },
  json: { value: false },
  help: { value: false },
  version: { value: false },
  prefix: { value: true },
  limit: { value: true },
  vector: { value: true },
  k: { value: true },
  field: { value: true },
  where: { value: true },
  from: { value: true, repeat: true },
  follow: { value: true, repeat: true },
  ef: { value: true },
  exact: { value: false },
  m: { value: true },
  "ef-construction": { value: true },
  quantize: { value: true },
  dim: { value: true },
  metric: { value: true },
  http: { value: true },
  listen: { value: true, repeat: true },
  bootstrap: { value: true, repeat: true },
  space: { value: true },
  replication: { value: true },
  memory: { value: false },
  mdns: { value: false },
  relay: { value: false },
  token: { value: true },
  "cors-origin": { value: true, repeat: true },
  "allow-host": { value: true, repeat: true },
  "no-auth": { value: false },
  encrypt: { value: false },
  force: { value: false },
};
export const GLOBAL_FLAGS = ["path", "url", "token", "json", "help", "version"];

export interface CommandSpec {
  /** The synopsis after `lattice `. */
  readonly usage: string;
  /** Positional arguments; `[NAME]` is optional. */
  readonly args: readonly string[];
  /** Flags besides the global ones. */
  readonly flags?: readonly string[];
  /** One line for the command list. */
  readonly summary: string;
  /** The rest of `lattice help COMMAND`. */
  readonly details: string;
  /** Set for commands of the design that this version does not have yet. */
  readonly unavailable?: true;
}

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  init: {
    usage: "init [--encrypt]",
    args: [],
    flags: ["encrypt"],
    summary: "create the database directory (if needed) and its identity; show its path, storage and ids",
    details: `Creates the database directory --path unless it exists and prints its path, storage engine,
this replica's actor id and its identity: the Ed25519 key in DIR/identity.json (mode 0600) that signs
its writes and is its peer id, created now unless there is one (any later open of DIR creates it
too). It also writes DIR/http-token (mode 0600) unless there is one: the token a node serving DIR
asks of writers (lattice serve --path DIR; other commands with --url and --path DIR read it).
Running it again is harmless: it says the database is already there.
  --encrypt   keep the identity's key encrypted with the passphrase in LATTICE_PASSPHRASE (required);
              an unencrypted one already there is encrypted. Every later open of DIR then needs it
A new identity is encrypted whenever LATTICE_PASSPHRASE is set, with or without --encrypt.
With --json: {"path","created","storage","actor","tokenFile","identity","encrypted"}.`,
  },
  put: {
    usage: "put SOUL JSON",
    args: ["SOUL", "JSON"],
    summary: "merge the fields of a JSON object into node SOUL",
    details: `Merges the fields of the JSON object into node SOUL and prints the soul and the state (the
hybrid-logical-clock time) the write was stamped with. A link is {"#": "other-soul"}; a nested
object becomes a child node SOUL/FIELD linked from the field; bytes are {"$bytes": "<base64>"};
null deletes a field. With --json: {"soul","state"}.
Example: lattice put alice '{"name": "Alice", "pet": {"name": "Rex"}, "friend": {"#": "bob"}}'`,
  },
  get: {
    usage: "get SOUL",
    args: ["SOUL"],
    summary: "print node SOUL as JSON (exit 3 if it does not exist)",
    details: `Prints node SOUL as a JSON object: links as {"#": soul}, bytes as {"$bytes": "<base64>"}.
Exits with 3 when there is no such node. With --json the object is on one line.`,
  },
  delete: {
    usage: "delete SOUL [FIELD]",
    args: ["SOUL", "[FIELD]"],
    summary: "delete node SOUL, or only its field FIELD",
    details: `Deletes every field of node SOUL, or only FIELD, by writing tombstones, and prints the state of
the deletion. Exits with 3 when the node (or the field) does not exist.
With --json: {"soul","field","state"} (field is null when the whole node was deleted).`,
  },
  list: {
    usage: "list [--prefix P] [--limit N]",
    args: [],
    flags: ["prefix", "limit"],
    summary: "print the souls of the nodes, in order",
    details: `Prints the soul of every node, one per line, in soul order (UTF-8 byte order).
  --prefix P   only souls that start with P
  --limit N    at most N nodes
With --json, one {"soul","data"} object per line (use it for souls that contain line breaks).`,
  },
  query: {
    usage: "query JSON",
    args: ["JSON"],
    summary: "follow links from start nodes and filter the nodes reached",
    details: `Runs a graph query given as JSON, as the library's db.query:
  {"from": SOUL or [SOULS], "path": [FIELD or "*", ...], "where": {FIELD: VALUE or CONDITION}, "limit": N}
A condition is {"eq": value, "lt": n, "gt": n, "prefix": "text"}; "*" follows every link.
Prints one result per line: the soul, a tab, the node as JSON. With --json, one {"soul","data"} per line.
Example: lattice query '{"from": "alice", "path": ["friends", "*"], "where": {"age": {"gt": 30}}}'`,
  },
  status: {
    usage: "status",
    args: [],
    summary: "show path, storage, kernels, actor, identity, version and node count",
    details: `Shows the database path, storage engine, kernel implementation and hash backend, this replica's
actor id and identity (public key), the Lattice version and the number of nodes.
With --json: {"path","storage","kernels","hashBackend","actor","version","nodes","deferred","identity"}.`,
  },
  serve: {
    usage: "serve [options]",
    args: [],
    flags: [
      "http",
      "listen",
      "bootstrap",
      "space",
      "replication",
      "memory",
      "mdns",
      "relay",
      "cors-origin",
      "allow-host",
      "no-auth",
    ],
    summary: "run a node: storage, peer-to-peer network, HTTP API and inspector",
    details:
      `  lattice serve [--http HOST:PORT] [--listen MULTIADDR]... [--bootstrap MULTIADDR]... [--space NAME]
                [--replication N] [--memory] [--mdns] [--relay] [--token TOKEN] [--cors-origin ORIGIN]...
                [--allow-host HOST]... [--no-auth]
Runs a node on the database --path (created if needed; --memory keeps data in memory only) in space
--space (default "default") until SIGINT or SIGTERM, then shuts down cleanly and exits 0.
  --http HOST:PORT      HTTP API and inspector (default ${DEFAULT_HTTP}; port 0 picks a free port)
  --mdns                find members of the space on the local network by mDNS (multicast queries on
                        every interface every 10 s; off by default): nodes need no --bootstrap
  --relay               offer a circuit relay: pages (which cannot be dialed) that join through this
                        node reach each other through it and switch to a direct WebRTC connection.
                        Bounded: 64 reservations, each relayed connection 2 min and 128 KiB
  --replication N       sharded mode with N replicas per node: not available yet, so serve refuses it;
                        every node of a space keeps all of its data (full replication)
  --token TOKEN         the HTTP API's token (default: DIR/http-token, written if missing; with
                        --memory a fresh one, given only in the --json ready line)
  --cors-origin ORIGIN  let pages of ORIGIN (e.g. http://localhost:5173) call the API; repeatable.
                        Without it no page of another origin can
  --allow-host HOST     serve requests for this host name (a proxy's or a DNS name of this machine);
                        IP addresses and localhost are always served, other names refused
  --no-auth             no token at all: anyone who can reach the port may write (development only)
Writes need the token (Authorization: Bearer TOKEN); reads too unless they come from this machine.
The inspector (the HTTP URL in a browser on this machine) gets it from the node.
When ready it prints one line "ready <http-url> <peer-id> <multiaddr>..." (peer id "-" while the node
has no networking); with --json {"ready":true,"http":...,"peerId":...,"addrs":[...],"token":...} (and "relay":true
with --relay).
Logs go to stderr; LATTICE_LOG=debug|info|warn|error sets how much (default warn).
Other commands reach the node with --url http://HOST:PORT, and --path DIR (or --token) for the token.`,
  },
  search: {
    usage:
      "search --vector JSON --k N [--field F] [--where JSON] [--from SOUL [--follow FIELD]...] [--ef N] [--exact]",
    args: [],
    flags: ["vector", "k", "field", "where", "from", "follow", "ef", "exact"],
    summary: "the N nodes whose vectors are nearest a vector",
    details: `Searches a vector index (declare one with lattice index add) as the library's db.search:
  --vector JSON   the query, a JSON array of numbers of the index's dimension
  --k N           how many results, 1 to 1000
  --field F       the indexed field (needed when several fields are indexed)
  --where JSON    only nodes meeting these conditions, as in lattice query: {FIELD: VALUE or CONDITION}
  --from SOUL     only nodes a walk from SOUL reaches (repeatable: several start souls), following
  --follow FIELD  this field's link, then the next --follow's ("*" follows every link), as the
                  "path" of lattice query; without --follow the start souls themselves
  --ef N          candidates of the approximate search (default: the index's ef); more is slower
                  and finds more of the true nearest
  --exact         score every candidate: the true top N (slower on large indexes)
Prints one result per line, best first: the soul, a tab, the score (similarity for cosine and dot,
distance for l2), a tab, the node as JSON. With --json, one {"soul","score","node"} per line.
The search is approximate (the index's HNSW graph, recall@10 >= 0.95 at the default ef) unless
--exact is given, the index holds under 1024 vectors or the filters leave few candidates.
Examples: lattice search --vector '[0.1, 0.9, 0]' --k 5 --where '{"kind": "post"}'
          lattice search --vector '[0.1, 0.9, 0]' --k 5 --from alice --follow likes --follow '*'`,
  },
  index: {
    usage:
      "index add FIELD --dim N [--metric M] [--m N] [--ef-construction N] [--ef N] [--quantize int8] | index list",
    args: ["ACTION", "[FIELD]"],
    flags: ["dim", "metric", "m", "ef-construction", "ef", "quantize"],
    summary: "declare a vector index on a field, or list the declared ones",
    details:
      `  lattice index add FIELD --dim N [--metric cosine|dot|l2] [--m N] [--ef-construction N] [--ef N]
                          [--quantize int8]
  lattice index list
add declares a vector index on FIELD (kept with the database, restored or rebuilt when it opens) for
vectors of N components, compared by --metric (default cosine), and indexes the vectors already
stored (the HNSW graph is built in the background; searches are exact until it is ready). The graph's
parameters: --m links per node (default 16), --ef-construction candidates while building (default 200),
--ef candidates while searching (default 50). --quantize int8 keeps the vectors as 8-bit integers.
Declaring it again with the same settings is harmless; with others it is refused. Values of FIELD
are then arrays of N numbers (stored as bytes: N little-endian 32-bit floats).
list prints one index per line: field, dimension, metric, how many vectors it holds and its state
(ready, or building with how many of them the graph holds).
With --json, one {"field","dim","metric","m","efConstruction","ef","count","dead","state",...} per line.`,
  },
  identity: {
    usage: "identity show | identity export | identity import FILE|- [--force]",
    args: ["ACTION", "[FILE]"],
    flags: ["force"],
    summary: "show, export or import the key that signs this directory's writes and is its peer id",
    details: `The identity of the database directory --path: an Ed25519 key in DIR/identity.json (mode 0600),
which signs the replica's writes (its actor id is the key's) and is its libp2p peer id, so a node
keeps its id across restarts. These commands read or write that file only; they never open the
database.
  show            prints the identity (public key, hex), actor id, peer id and whether the key is
                  encrypted (no passphrase needed). With --json: {"path","id","actor","peerId","encrypted"}
  export          prints the identity as JSON ({"type":"lattice-identity",...}) on standard output:
                  it holds the secret key, so keep it private (a warning goes to standard error). An
                  encrypted key needs its passphrase in LATTICE_PASSPHRASE
  import FILE|-   writes the identity exported in FILE (- reads standard input) into DIR (created if
                  missing), encrypted when LATTICE_PASSPHRASE is set. Only into a directory without
                  one, unless --force: replacing it changes the replica's actor and peer id
Example: lattice identity export --path old > key.json && lattice identity import key.json --path new`,
  },
  peers: {
    usage: "peers --url URL",
    args: [],
    summary: "list the connected peers and their sync state",
    details: `Lists the peers a running node (--url) is connected to, with their addresses and sync state.
With --json, one peer object per line.`,
  },
  bench: {
    usage: "bench [SUITE] [--filter REGEXP]",
    args: ["[SUITE]"],
    summary: "run a benchmark suite (from a checkout of the repository)",
    details: `Runs the mitata benchmark suite bench/SUITE.bench.ts through scripts/bench.ts in a child process
of this runtime; the arguments after "bench" go to that runner (for example --json, --rounds N or
--filter REGEXP), and "lattice bench --help" lists the suites. The suites live in a checkout of the
repository (after npm install there); an installed lattice says so. Same as: deno task bench SUITE`,
  },
  help: {
    usage: "help [COMMAND]",
    args: ["[COMMAND]"],
    summary: "show help for all commands, or for one",
    details: "Shows the list of commands, or the help of COMMAND.",
  },
};

export function commandHelp(name: string): string {
  const spec = COMMANDS[name];
  const state = spec.unavailable ? `\nNot available yet in Lattice ${VERSION}.\n` : "";
  return `Usage: lattice ${spec.usage} [--path DIR] [--json]

${spec.summary[0].toUpperCase()}${spec.summary.slice(1)}.
${state}
${spec.details}

${GLOBAL_HELP}`;
}

const GLOBAL_HELP = `Options of every command:
  --path DIR   database directory (default: $LATTICE_PATH, else ./.lattice)
  --url URL    send the command to a running node's HTTP API (lattice serve) instead of opening --path
  --token T    the node's token for --url (default: $LATTICE_TOKEN, else --path DIR/http-token)
  --json       machine-readable output: one JSON value per line
  -h, --help   show help
  --version    print the version`;

export function generalHelp(): string {
  const specs = Object.values(COMMANDS);
  const width = Math.max(...specs.map((s) => s.usage.length));
  const lines = specs.map((s) =>
    `  ${s.usage.padEnd(width)}  ${s.summary}${s.unavailable ? " (not available yet)" : ""}`
  );
  return `Lattice ${VERSION}: a peer-to-peer graph database.

Usage: lattice <command> [--path DIR] [--url http://host:port] [--json]

Commands:
${lines.join("\n")}

${GLOBAL_HELP}

Values in JSON: a link is {"#": "soul"}, a nested object becomes a child node (soul/field),
bytes are {"$bytes": "<base64>"}, null deletes a field.
Exit codes: 0 ok, 1 error, 2 usage error, 3 not found.
Environment: LATTICE_PATH (default --path), LATTICE_TOKEN (default --token), LATTICE_KERNELS=auto|wasm|js,
LATTICE_PASSPHRASE (the passphrase of an encrypted identity), LATTICE_DEBUG=1 (print stack traces of
unexpected errors).
Run "lattice help COMMAND" or "lattice COMMAND --help" for the details of a command.`;
}
