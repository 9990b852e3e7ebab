/**
 * The WebRTC-Direct certificate of a node, kept in its directory
 * (`<dir>/webrtc-cert.json`, mode 0600) so that its `/webrtc-direct`
 * address, which carries the certificate's hash (`/certhash/u…`), stays the
 * same across restarts, as its peer id does (net/peer_key.ts). libp2p's
 * transport makes a new certificate at each start unless given one (it keeps
 * one only in a libp2p keychain, which Lattice does not run): this file gives
 * it one.
 *
 * The certificate is a self-signed X.509 v3 certificate over an ECDSA P-256
 * key (what Chromium, Pion and libdatachannel all accept), valid for a year
 * and made anew at a start when under 30 days remain (the address changes
 * then). It is built here in DER with WebCrypto (a few fixed ASN.1 shapes):
 * WebRTC checks only its hash (DTLS fingerprint = certhash), never a chain.
 *
 * @module
 */
import { systemWorld, type World } from "../core/world.ts";
import { toBase64Url } from "../core/trust/identity.ts";
import { readPrivateFile, writePrivateFile } from "../storage/private_file.ts";

/** The certificate's file name inside a database directory. */
export const WEBRTC_CERT_FILE = "webrtc-cert.json";

/** How long a new certificate is valid (ms): a year. */
export const CERT_LIFESPAN_MS = 365 * 24 * 3600_000;
/** A stored certificate with less validity left than this (ms) is replaced at start: 30 days. */
export const CERT_RENEW_MS = 30 * 24 * 3600_000;

/** What `@libp2p/webrtc`'s `webRTCDirect({ certificate })` takes, plus its expiry. */
export interface WebRtcCertificate {
  /** The private key, PKCS #8 PEM. */
  readonly privateKey: string;
  /** The certificate, PEM. */
  readonly pem: string;
  /** Multibase base64url of the multihash (sha2-256) of the certificate's DER: the address's `/certhash/`. */
  readonly certhash: string;
  /** When it expires (ms since the epoch). */
  readonly notAfter: number;
}

// ---------------------------------------------------------------- DER

function der(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const head = length < 0x80
    ? [tag, length]
    : length < 0x100
    ? [tag, 0x81, length]
    : [tag, 0x82, length >> 8, length & 0xff];
  const out = new Uint8Array(head.length + length);
  out.set(head);
  let at = head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const bytes = (...b: number[]) => new Uint8Array(b);
const seq = (...parts: Uint8Array[]) => der(0x30, ...parts);

/** A DER INTEGER of unsigned big-endian `b` (leading zeros dropped, a zero added before a high bit). */
function uint(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return v[0] & 0x80 ? der(0x02, bytes(0), v) : der(0x02, v);
}

/** UTCTime before 2050, GeneralizedTime from then (RFC 5280 4.1.2.5), to the second. */
function time(ms: number): Uint8Array {
  const iso = new Date(ms).toISOString(); // 2026-12-07T05:00:00.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z"; // 20261207050000Z
  const year = Number(iso.slice(0, 4));
  return year < 2050
    ? der(0x17, new TextEncoder().encode(digits.slice(2)))
    : der(0x18, new TextEncoder().encode(digits));
}

/** ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters. */
const ECDSA_SHA256 = seq(bytes(0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02));
/** CN=lattice. */
const NAME = seq(
  der(0x31, seq(bytes(0x06, 0x03, 0x55, 0x04, 0x03), der(0x0c, new TextEncoder().encode("lattice")))),
);
/** [3] { basicConstraints (2.5.29.19), critical, cA false }: as libp2p's own. */
const EXTENSIONS = der(
  0xa3,
  seq(seq(bytes(0x06, 0x03, 0x55, 0x1d, 0x13), bytes(0x01, 0x01, 0xff), der(0x04, seq()))),
);

function pem(label: string, body: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < body.length; i++) bin += String.fromCharCode(body[i]);
  const lines = btoa(bin).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** A new self-signed certificate valid from now for `lifespan` ms (default {@link CERT_LIFESPAN_MS}). */
export async function createWebRtcCertificate(
  world: World = systemWorld,
  lifespan = CERT_LIFESPAN_MS,
): Promise<WebRtcCertificate> {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const now = Math.floor(world.now() / 1000) * 1000;
  const notAfter = now + lifespan;
  const serial = world.randomBytes(new Uint8Array(16));
  serial[0] = (serial[0] & 0x7f) | 0x01; // positive, no leading zero
  const tbs = seq(
    der(0xa0, bytes(0x02, 0x01, 0x02)), // v3
    der(0x02, serial),
    ECDSA_SHA256,
    NAME,
    seq(time(now), time(notAfter)),
    NAME,
    new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey)),
    EXTENSIONS,
  );
  const sig = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      keys.privateKey,
      tbs as Uint8Array<ArrayBuffer>,
    ),
  );
  // WebCrypto gives r ‖ s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }.
  const ecdsaSig = seq(uint(sig.subarray(0, 32)), uint(sig.subarray(32)));
  const cert = seq(tbs, ECDSA_SHA256, der(0x03, bytes(0), ecdsaSig));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", cert as Uint8Array<ArrayBuffer>));
  const multihash = new Uint8Array(34);
  multihash.set([0x12, 0x20]);
  multihash.set(digest, 2);
  return {
    privateKey: pem("PRIVATE KEY", new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey))),
    pem: pem("CERTIFICATE", cert),
    certhash: "u" + toBase64Url(multihash),
    notAfter,
  };
}

function parse(bytes: Uint8Array | undefined): WebRtcCertificate | undefined {
  if (bytes === undefined) return undefined;
  try {
    const o = JSON.parse(new TextDecoder().decode(bytes));
    if (
      typeof o?.privateKey === "string" && typeof o.pem === "string" && typeof o.certhash === "string" &&
      typeof o.notAfter === "number"
    ) {
      return { privateKey: o.privateKey, pem: o.pem, certhash: o.certhash, notAfter: o.notAfter };
    }
  } catch {
    // not JSON: replaced below
  }
  return undefined;
}

/**
 * The certificate kept in `<dir>/webrtc-cert.json`, or a new one written
 * there when there is none, it is unreadable, or it expires within
 * {@link CERT_RENEW_MS}. (Unlike the identity, losing it costs only a
 * changed address, so a broken file is replaced, not refused.)
 */
export async function loadOrCreateWebRtcCertificate(
  dir: string,
  world: World = systemWorld,
): Promise<WebRtcCertificate> {
  const stored = parse(await readPrivateFile(dir, WEBRTC_CERT_FILE));
  if (stored && stored.notAfter - world.now() > CERT_RENEW_MS) return stored;
  const fresh = await createWebRtcCertificate(world);
  await writePrivateFile(dir, WEBRTC_CERT_FILE, JSON.stringify(fresh, null, 2) + "\n", { replace: true });
  return fresh;
}
