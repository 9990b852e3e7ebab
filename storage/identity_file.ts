/**
 * The identity file of a database directory: `<dir>/identity.json`, mode
 * 0600, holding the directory's Ed25519 key (core/trust/identity.ts) as an
 * {@link ExportedIdentity}, or sealed with a passphrase as an
 * {@link EncryptedIdentity}: AES-256-GCM under a key derived by scrypt
 * (N = 2^16, r = 8, p = 1: ~200 ms and 64 MiB on Deno and Bun here, so a
 * stolen file costs an attacker as much per guess). The public key stays in
 * the clear, so `lattice identity show` needs no passphrase; it is also the
 * cipher's associated data, so it cannot be swapped.
 *
 * The first `open` of a directory creates the file (encrypted when a
 * passphrase is given, `LATTICE_PASSPHRASE` on servers); later opens read it.
 * The file is written atomically (storage/private_file.ts): of two first
 * openers one writes it and the other reads its key; a crash leaves the old
 * file or the new one, never half of one. A file that cannot be read as an
 * identity is an {@link IdentityFileError} and is left as it is: replacing
 * it would silently change the node's id and lose the key.
 *
 * File calls go through storage/_host.ts (Deno's namespace on Deno, `node:fs`
 * elsewhere), loaded only when a directory is opened.
 *
 * @module
 */
import { scryptAsync } from "@noble/hashes/scrypt.js";
import {
  createIdentity,
  type ExportedIdentity,
  exportIdentity,
  fromBase64Url,
  type Identity,
  identitySecret,
  importIdentity,
  PUBLIC_KEY_BYTES,
  toBase64Url,
} from "../core/trust/identity.ts";
import { systemWorld } from "../core/world.ts";
import { pathIn, readPrivateFile, writePrivateFile } from "./private_file.ts";

/** The identity's file name inside a database directory. */
export const IDENTITY_FILE = "identity.json";

/** The environment variable holding the passphrase of encrypted identity files (servers). */
export const PASSPHRASE_ENV = "LATTICE_PASSPHRASE";

/** scrypt's cost of new files: 2^16 × 128 × r bytes = 64 MiB, ~200 ms (Deno and Bun, this machine). */
export const SCRYPT_N = 1 << 16, SCRYPT_R = 8, SCRYPT_P = 1;

/** An identity sealed with a passphrase: what `identity.json` holds when one was given. */
export interface EncryptedIdentity {
  readonly type: "lattice-identity-encrypted";
  readonly version: 1;
  /** The public key, base64url (in the clear, and the cipher's associated data). */
  readonly publicKey: string;
  readonly kdf: {
    readonly name: "scrypt";
    readonly N: number;
    readonly r: number;
    readonly p: number;
    readonly salt: string;
  };
  readonly cipher: "AES-GCM";
  /** 12 bytes, base64url. */
  readonly nonce: string;
  /** The 32-byte secret seed and the 16-byte tag, base64url. */
  readonly ciphertext: string;
}

/** An identity file that cannot be used as it is: unreadable, corrupt, or locked without the right passphrase. */
export class IdentityFileError extends Error {
  override name = "IdentityFileError";
}

/** What an identity file says without its passphrase. */
export interface IdentityFileInfo {
  /** `<dir>/identity.json`. */
  readonly path: string;
  /** The public key (32 bytes). */
  readonly publicKey: Uint8Array;
  /** Whether the secret key is sealed with a passphrase. */
  readonly encrypted: boolean;
}

/** `<dir>/identity.json`, with the separator of the path given. */
export function identityPath(dir: string): string {
  return pathIn(dir, IDENTITY_FILE);
}

type Parsed = { kind: "plain"; value: ExportedIdentity } | { kind: "sealed"; value: EncryptedIdentity };

/** The file's JSON, or `undefined` when there is none; an {@link IdentityFileError} when it is not an identity. */
async function readParsed(dir: string): Promise<Parsed | undefined> {
  const path = identityPath(dir);
  const bytes = await readPrivateFile(dir, IDENTITY_FILE);
  if (bytes === undefined) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw corrupt(path, "it is not JSON");
  }
  if (typeof o !== "object" || o === null) throw corrupt(path, "it is not a JSON object");
  if (o.type === "lattice-identity") return { kind: "plain", value: o as unknown as ExportedIdentity };
  if (o.type !== "lattice-identity-encrypted") throw corrupt(path, "its type is not a Lattice identity's");
  if (o.version !== 1) throw corrupt(path, `its version ${String(o.version)} is not 1`);
  const kdf = o.kdf as Record<string, unknown> | null;
  const pow2 = (n: unknown, lo: number, hi: number) =>
    Number.isInteger(n) && (n as number) >= lo && (n as number) <= hi &&
    ((n as number) & ((n as number) - 1)) === 0;
  const int = (n: unknown, lo: number, hi: number) =>
    Number.isInteger(n) && (n as number) >= lo && (n as number) <= hi;
  // Bounded, so that a planted file cannot make open() spend gigabytes or minutes.
  if (
    typeof kdf !== "object" || kdf === null || kdf.name !== "scrypt" || !pow2(kdf.N, 1 << 10, 1 << 20) ||
    !int(kdf.r, 1, 32) || !int(kdf.p, 1, 16) || typeof kdf.salt !== "string" || o.cipher !== "AES-GCM" ||
    typeof o.nonce !== "string" || typeof o.ciphertext !== "string" || typeof o.publicKey !== "string"
  ) {
    throw corrupt(path, "its encryption parameters are missing or out of range");
  }
  return { kind: "sealed", value: o as unknown as EncryptedIdentity };
}

function corrupt(path: string, why: string): IdentityFileError {
  return new IdentityFileError(
    `The identity file ${path} cannot be read (${why}); it was left as it is: restore it from a backup, ` +
      "or move it away to give this directory a new identity",
  );
}

/** What `<dir>/identity.json` says without its passphrase, or `undefined` when there is none. */
export async function inspectIdentityFile(dir: string): Promise<IdentityFileInfo | undefined> {
  const path = identityPath(dir);
  const parsed = await readParsed(dir);
  if (!parsed) return undefined;
  let publicKey: Uint8Array;
  try {
    publicKey = fromBase64Url(String(parsed.value.publicKey), "publicKey");
  } catch {
    throw corrupt(path, "its publicKey is not base64url");
  }
  if (publicKey.length !== PUBLIC_KEY_BYTES) throw corrupt(path, "its publicKey is not 32 bytes");
  return { path, publicKey, encrypted: parsed.kind === "sealed" };
}

/**
 * The identity in `<dir>/identity.json`, or `undefined` when there is none.
 * An encrypted file needs its `passphrase`; without it, with a wrong one, or
 * for a corrupt file, an {@link IdentityFileError}.
 */
export async function readIdentityFile(dir: string, passphrase?: string): Promise<Identity | undefined> {
  const path = identityPath(dir);
  const parsed = await readParsed(dir);
  if (!parsed) return undefined;
  if (parsed.kind === "plain") {
    try {
      return await importIdentity(parsed.value);
    } catch (e) {
      throw corrupt(path, (e as Error).message);
    }
  }
  const sealed = parsed.value;
  if (passphrase === undefined || passphrase === "") {
    throw new IdentityFileError(
      `The identity in ${path} is encrypted: give its passphrase in ${PASSPHRASE_ENV} (or open's passphrase option)`,
    );
  }
  let seed: Uint8Array;
  try {
    const key = await sealKey(passphrase, sealed.kdf, fromBase64Url(sealed.kdf.salt, "salt"));
    seed = new Uint8Array(
      await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: fromBase64Url(sealed.nonce, "nonce") as Uint8Array<ArrayBuffer>,
          additionalData: new TextEncoder().encode(sealed.publicKey),
        },
        key,
        fromBase64Url(sealed.ciphertext, "ciphertext") as Uint8Array<ArrayBuffer>,
      ),
    );
  } catch (e) {
    if (e instanceof TypeError) throw corrupt(path, e.message);
    throw new IdentityFileError(
      `Cannot unlock the identity in ${path}: the passphrase (${PASSPHRASE_ENV}, or open's passphrase option) is wrong`,
    );
  }
  let identity: Identity;
  try {
    identity = await importIdentity({
      type: "lattice-identity",
      version: 1,
      publicKey: sealed.publicKey,
      secretKey: toBase64Url(seed),
    });
  } catch (e) {
    throw corrupt(path, (e as Error).message);
  } finally {
    seed.fill(0);
  }
  return identity;
}

/** The AES-256-GCM key of a passphrase: scrypt with the file's parameters. */
async function sealKey(
  passphrase: string,
  kdf: { N: number; r: number; p: number },
  salt: Uint8Array,
): Promise<CryptoKey> {
  const raw = await scryptAsync(new TextEncoder().encode(passphrase.normalize("NFC")), salt, {
    N: kdf.N,
    r: kdf.r,
    p: kdf.p,
    dkLen: 32,
  });
  try {
    return await crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
      "encrypt",
      "decrypt",
    ]);
  } finally {
    raw.fill(0);
  }
}

/** `identity` sealed with `passphrase` (scrypt {@link SCRYPT_N}, {@link SCRYPT_R}, {@link SCRYPT_P}; AES-256-GCM). */
export async function encryptIdentity(identity: Identity, passphrase: string): Promise<EncryptedIdentity> {
  if (typeof passphrase !== "string" || passphrase === "") {
    throw new TypeError("the passphrase must be a non-empty string");
  }
  const salt = systemWorld.randomBytes(new Uint8Array(16));
  const nonce = systemWorld.randomBytes(new Uint8Array(12));
  const kdf = { name: "scrypt" as const, N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P, salt: toBase64Url(salt) };
  const publicKey = toBase64Url(identity.publicKey);
  const seed = identitySecret(identity);
  try {
    const ciphertext = await crypto.subtle.encrypt(
      {
        name: "AES-GCM",
        iv: nonce as Uint8Array<ArrayBuffer>,
        additionalData: new TextEncoder().encode(publicKey),
      },
      await sealKey(passphrase, kdf, salt),
      seed as Uint8Array<ArrayBuffer>,
    );
    return {
      type: "lattice-identity-encrypted",
      version: 1,
      publicKey,
      kdf,
      cipher: "AES-GCM",
      nonce: toBase64Url(nonce),
      ciphertext: toBase64Url(new Uint8Array(ciphertext)),
    };
  } finally {
    seed.fill(0);
  }
}

/** Options of {@link writeIdentityFile}. */
export interface WriteIdentityOptions {
  /** Seal the key with this passphrase (default: written in the clear, mode 0600). */
  readonly passphrase?: string;
  /** Replace an identity file already there (default: an `IdentityFileError` if there is one). */
  readonly replace?: boolean;
}

/**
 * Writes `identity` to `<dir>/identity.json` (mode 0600, atomically; the
 * directory must exist). Returns whether this call wrote it: without
 * `replace`, `false` when a file was already there (it is left alone).
 */
export async function writeIdentityFile(
  dir: string,
  identity: Identity,
  options: WriteIdentityOptions = {},
): Promise<boolean> {
  const content = options.passphrase === undefined
    ? exportIdentity(identity)
    : await encryptIdentity(identity, options.passphrase);
  return await writePrivateFile(dir, IDENTITY_FILE, JSON.stringify(content, null, 2) + "\n", {
    replace: options.replace,
  });
}

/**
 * The identity of database directory `dir`: read from `<dir>/identity.json`,
 * or created there on the first call (sealed with `passphrase` when one is
 * given). Of two processes creating it at once, both end with the winner's.
 */
export async function loadOrCreateIdentity(
  dir: string,
  passphrase?: string,
): Promise<{ identity: Identity; created: boolean }> {
  const found = await readIdentityFile(dir, passphrase);
  if (found) return { identity: found, created: false };
  const identity = await createIdentity();
  const pass = passphrase === "" ? undefined : passphrase;
  if (await writeIdentityFile(dir, identity, { passphrase: pass })) return { identity, created: true };
  const winner = await readIdentityFile(dir, passphrase);
  if (!winner) throw new IdentityFileError(`${identityPath(dir)} disappeared while it was being read`);
  return { identity: winner, created: false };
}
