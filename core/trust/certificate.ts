/**
 * Certificates: an owner's grant to other keys to write under its protected
 * souls.
 *
 * Souls `~<hex public key>` and `~<hex public key>/…` are protected: only
 * ops signed by that key are accepted, or by a key named in a certificate
 * the owner signed. A certificate names one or more grantees (each of them
 * may use it), a soul prefix under the owner's souls, the fields allowed
 * (none listed: all) and an expiry, judged by the *receiver's* clock. The
 * owner revokes one by writing `true` to field `<certificate id>` of its
 * soul `~<owner>/~revoked` (a signed op like any other, so it replicates).
 *
 * Encoding (signed by the issuer over `lattice/cert/v1\0 ‖ body`):
 *
 * ```
 * body:  1 (version) ‖ issuer key (32) ‖ g (1 byte, 1..32) ‖ g grantee keys (32 each)
 *        ‖ u16 prefix length ‖ prefix (UTF-8) ‖ u16 f ‖ f × (u16 length ‖ field)
 *        ‖ expiry (float64 ms since the epoch)
 * cert:  body ‖ signature (64)
 * ```
 *
 * A certificate travels inside the `sig` of each op that uses it
 * (core/trust/signing.ts), so an op is checked without anything else but
 * the revocations its receiver holds.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import {
  concatBytes,
  type Identity,
  keyIdBytes,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  toHex,
  verifySignature,
} from "./identity.ts";
import { MAX_CERT_BYTES } from "./signing.ts";

/** Most grantees in one certificate. */
export const MAX_GRANTEES = 32;
/** The soul under an owner's protected souls where its revocations are written. */
export const REVOKED = "~revoked";

const utf8 = new TextEncoder(), text = new TextDecoder("utf-8", { fatal: true });
const CERT_TAG = utf8.encode("lattice/cert/v1\0");

/**
 * What a certificate grants.
 *
 * @example
 * ```ts
 * import { createIdentity, type Grant } from "../../mod.ts";
 * const alice = await createIdentity(), bob = await createIdentity();
 * const grant: Grant = { grantees: [bob.id], prefix: `~${alice.id}/inbox/`, fields: ["text"], expires: Date.now() + 60_000 };
 * console.log(grant.prefix.startsWith(`~${alice.id}`)); // true
 * ```
 */
export interface Grant {
  /** Public keys (hex) allowed to write; each of them may use the certificate. */
  readonly grantees: readonly string[];
  /** Souls starting with this may be written; it lies under the issuer's `~<id>`. */
  readonly prefix: string;
  /** Fields allowed; empty or left out: every field. */
  readonly fields?: readonly string[];
  /** Ms since the epoch after which receivers refuse the certificate (their own clock). */
  readonly expires: number;
}

/**
 * A decoded certificate.
 *
 * @example
 * ```ts
 * import { type Certificate, createCertificate, createIdentity, readCertificate } from "../../mod.ts";
 * const alice = await createIdentity();
 * const bytes = await createCertificate(alice, { grantees: [alice.id], prefix: `~${alice.id}`, expires: 1e13 });
 * const cert: Certificate | undefined = await readCertificate(bytes);
 * console.log(cert?.issuer === alice.id, cert?.fields, cert?.id.length); // true [] 64
 * ```
 */
export interface Certificate extends Grant {
  /** The issuer's public key (hex): the owner of the souls. */
  readonly issuer: string;
  /** SHA-256 of the encoded certificate, hex: what a revocation names. */
  readonly id: string;
  readonly fields: readonly string[];
  /** The encoding, as it travels. */
  readonly bytes: Uint8Array;
}

/** The hex public key that owns `soul` when it is protected (`~<64 hex>` or `~<64 hex>/…`), else undefined. */
export function ownerOf(soul: string): string | undefined {
  if (soul.charCodeAt(0) !== 0x7e || soul.length < 65) return undefined; // "~"
  if (soul.length > 65 && soul.charCodeAt(65) !== 0x2f) return undefined; // "/"
  const id = soul.slice(1, 65);
  return /^[0-9a-f]{64}$/.test(id) ? id : undefined;
}

/** Checks a grant an issuer wants to sign; throws `TypeError`/`RangeError` naming the problem. */
function checkGrant(issuer: string, g: Grant): void {
  if (typeof g !== "object" || g === null) throw new TypeError("a certificate grant is an object");
  if (!Array.isArray(g.grantees) || g.grantees.length === 0 || g.grantees.length > MAX_GRANTEES) {
    throw new RangeError(`a certificate names 1 to ${MAX_GRANTEES} grantees`);
  }
  for (const k of g.grantees) keyIdBytes(k, "a grantee");
  if (typeof g.prefix !== "string" || ownerOf(g.prefix) !== issuer) {
    throw new RangeError(`a certificate's prefix must lie under the issuer's souls ~${issuer}`);
  }
  if (g.fields !== undefined && (!Array.isArray(g.fields) || g.fields.some((f) => typeof f !== "string"))) {
    throw new TypeError("a certificate's fields are a list of field names");
  }
  if (typeof g.expires !== "number" || !Number.isFinite(g.expires)) {
    throw new TypeError("a certificate's expires is a time in ms since the epoch");
  }
}

/**
 * A certificate from `issuer` granting `grant`, encoded.
 *
 * @example
 * ```ts
 * import { createCertificate, createIdentity, readCertificate } from "../../mod.ts";
 * const alice = await createIdentity(), bob = await createIdentity();
 * const cert = await createCertificate(alice, {
 *   grantees: [bob.id], prefix: `~${alice.id}/board/`, expires: Date.now() + 86_400_000,
 * });
 * console.log((await readCertificate(cert))?.grantees[0] === bob.id); // true
 * ```
 */
export async function createCertificate(issuer: Identity, grant: Grant): Promise<Uint8Array> {
  checkGrant(issuer.id, grant);
  const parts: number[] = [1, ...issuer.publicKey, grant.grantees.length];
  for (const k of grant.grantees) parts.push(...keyIdBytes(k, "a grantee"));
  const pushText = (s: string) => {
    const b = utf8.encode(s);
    if (b.length > 0xffff) throw new RangeError("a certificate's prefix or field is too long");
    parts.push(b.length >> 8, b.length & 0xff, ...b);
  };
  pushText(grant.prefix);
  const fields = grant.fields ?? [];
  parts.push(fields.length >> 8, fields.length & 0xff);
  for (const f of fields) pushText(f);
  const expiry = new Uint8Array(8);
  new DataView(expiry.buffer).setFloat64(0, grant.expires);
  parts.push(...expiry);
  const body = Uint8Array.from(parts);
  const signature = await issuer.sign(concatBytes(CERT_TAG, body));
  const cert = concatBytes(body, signature);
  if (cert.length > MAX_CERT_BYTES) throw new RangeError(`a certificate is at most ${MAX_CERT_BYTES} bytes`);
  return cert;
}

/** The fields of an encoded certificate, its signature not checked; undefined when malformed. */
export function decodeCertificate(bytes: Uint8Array): Certificate | undefined {
  try {
    let p = 0;
    const need = (n: number) => {
      if (p + n > bytes.length) throw new RangeError("short");
    };
    need(1 + PUBLIC_KEY_BYTES + 1);
    if (bytes[p++] !== 1) return undefined;
    const issuer = toHex(bytes.subarray(p, p + PUBLIC_KEY_BYTES));
    p += PUBLIC_KEY_BYTES;
    const g = bytes[p++];
    if (g < 1 || g > MAX_GRANTEES) return undefined;
    need(32 * g);
    const grantees: string[] = [];
    for (let i = 0; i < g; i++, p += 32) grantees.push(toHex(bytes.subarray(p, p + 32)));
    const readText = () => {
      need(2);
      const n = bytes[p] << 8 | bytes[p + 1];
      p += 2;
      need(n);
      const s = text.decode(bytes.subarray(p, p + n));
      p += n;
      return s;
    };
    const prefix = readText();
    need(2);
    const f = bytes[p] << 8 | bytes[p + 1];
    p += 2;
    const fields: string[] = [];
    for (let i = 0; i < f; i++) fields.push(readText());
    need(8);
    const expires = new DataView(bytes.buffer, bytes.byteOffset + p, 8).getFloat64(0);
    p += 8;
    if (bytes.length !== p + SIGNATURE_BYTES || !Number.isFinite(expires)) return undefined;
    if (ownerOf(prefix) !== issuer) return undefined;
    return { issuer, grantees, prefix, fields, expires, id: toHex(sha256(bytes)), bytes };
  } catch {
    return undefined;
  }
}

/** Issuer signatures already checked, by certificate id (bounded). */
const checked = new Map<string, boolean>();
const CHECKED_MAX = 1024;

/**
 * The certificate encoded in `bytes` when it is well formed and its issuer's
 * signature holds, else undefined. Expiry and revocation are the receiver's
 * to judge ({@link allows}).
 *
 * @example
 * ```ts
 * import { createCertificate, createIdentity, readCertificate } from "../../mod.ts";
 * const alice = await createIdentity();
 * const cert = await createCertificate(alice, { grantees: [alice.id], prefix: `~${alice.id}`, expires: 1 });
 * cert[cert.length - 1] ^= 1; // a damaged signature
 * console.log(await readCertificate(cert)); // undefined
 * ```
 */
export async function readCertificate(bytes: Uint8Array): Promise<Certificate | undefined> {
  const c = decodeCertificate(bytes);
  if (c === undefined) return undefined;
  let ok = checked.get(c.id);
  if (ok === undefined) {
    const body = bytes.subarray(0, bytes.length - SIGNATURE_BYTES);
    ok = await verifySignature(
      bytes.subarray(1, 1 + PUBLIC_KEY_BYTES),
      bytes.subarray(bytes.length - SIGNATURE_BYTES),
      concatBytes(CERT_TAG, body),
    );
    if (checked.size >= CHECKED_MAX) checked.clear();
    checked.set(c.id, ok);
  }
  return ok ? c : undefined;
}

/**
 * Why `cert` does not let `signer` (hex key) write field `field` of `soul`
 * at receiver time `now`, or undefined when it does. Revocation is checked
 * by the caller (it needs the store).
 */
export function refusal(
  cert: Certificate,
  signer: string,
  soul: string,
  field: string,
  now: number,
): string | undefined {
  if (ownerOf(soul) !== cert.issuer) return "certificate from another owner than the soul's";
  if (soul === `~${cert.issuer}/${REVOKED}`) return "only the owner writes its revocations";
  if (!cert.grantees.includes(signer)) return "certificate does not name the signer";
  if (!soul.startsWith(cert.prefix)) return "certificate is for another prefix";
  if (cert.fields.length > 0 && !cert.fields.includes(field)) return "certificate does not allow this field";
  if (!(now < cert.expires)) return "certificate expired";
  return undefined;
}
