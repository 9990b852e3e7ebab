/**
 * The bearer token of a node's HTTP API (docs/API.md "HTTP API"): 32 random
 * bytes as base64url (43 characters), kept in `<dir>/http-token` with mode
 * 0600 so that only the directory's owner can read it. `lattice init` writes
 * it, `lattice serve` writes it when the directory has none, and the CLI's
 * `--url` reads it from `--path`. A token given by hand (`--token`) may be any
 * 1–1024 visible ASCII characters (no spaces: it travels in a header).
 *
 * {@link newToken} and {@link checkToken} use web standards only (randomness
 * through a `World`, core/world.ts); the file functions load `node:fs` with a
 * dynamic `import()` of a variable, so a browser bundle that reaches this file
 * never pulls it in.
 *
 * @example
 * ```ts ignore
 * import { ensureTokenFile } from "./token.ts";
 * const { token, path, created } = await ensureTokenFile("./data");
 * console.log(created ? `wrote ${path}` : `read ${path}`, token.length); // 43
 * ```
 *
 * @module
 */
import { systemWorld, type World } from "../core/world.ts";

/** The token's file name inside a database directory. */
export const TOKEN_FILE = "http-token";

/** A fresh token: 32 random bytes of `world` (default: `crypto.getRandomValues`), base64url without padding. */
export function newToken(world: World = systemWorld): string {
  const bytes = world.randomBytes(new Uint8Array(32));
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

const TOKEN_SHAPE = /^[\x21-\x7e]{1,1024}$/;

/** Returns `token` if it can be a token; `TypeError` naming `what` otherwise. */
export function checkToken(token: unknown, what = "The token"): string {
  if (typeof token !== "string" || !TOKEN_SHAPE.test(token)) {
    throw new TypeError(`${what} must be 1 to 1024 visible ASCII characters without spaces`);
  }
  return token;
}

type Fs = typeof import("node:fs/promises");

async function fsModule(): Promise<Fs> {
  const specifier = "node:fs/promises"; // a variable, so bundlers leave it out
  return await import(specifier) as Fs;
}

/** `<dir>/http-token`, with the separator of the path given. */
export function tokenPath(dir: string): string {
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + TOKEN_FILE : `${dir}/${TOKEN_FILE}`;
}

/**
 * The token in `<dir>/http-token`, or `undefined` when there is no such
 * file. A file that does not hold a token is a `TypeError` naming it.
 */
export async function readTokenFile(dir: string): Promise<string | undefined> {
  const fs = await fsModule();
  const path = tokenPath(dir);
  let text: string;
  try {
    text = await fs.readFile(path, "utf8");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return undefined;
    throw e;
  }
  return checkToken(text.trim(), `The token in ${path}`);
}

/** What {@link ensureTokenFile} found or made. */
export interface TokenFile {
  readonly token: string;
  /** `<dir>/http-token`. */
  readonly path: string;
  /** Whether this call wrote the file. */
  readonly created: boolean;
  /** Whether users other than the owner may read it (its mode has group or other bits). */
  readonly exposed: boolean;
}

/**
 * Reads `<dir>/http-token`, or creates it with a {@link newToken} and mode
 * 0600. The directory must exist.
 */
export async function ensureTokenFile(dir: string): Promise<TokenFile> {
  const fs = await fsModule();
  const path = tokenPath(dir);
  let created = false;
  if (await readTokenFile(dir) === undefined) {
    // Written whole under another name, then linked: a reader never sees half a token, and of two
    // processes creating it at once one links and the other reads the winner's token.
    const temp = `${path}.${newToken().slice(0, 8)}.tmp`;
    await fs.writeFile(temp, newToken() + "\n", { mode: 0o600, flag: "wx" });
    try {
      await fs.link(temp, path);
      created = true;
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
    } finally {
      await fs.rm(temp, { force: true });
    }
  }
  const token = await readTokenFile(dir);
  if (token === undefined) throw new Error(`${path} disappeared while it was being read`);
  const mode = (await fs.stat(path)).mode;
  return { token, path, created, exposed: (mode & 0o077) !== 0 };
}
