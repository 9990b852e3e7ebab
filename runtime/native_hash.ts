/**
 * The runtime's native SHA-256 (node:crypto on Deno, Bun and Node), loaded
 * with a dynamic import so that browser bundles never pull a `node:` module.
 *
 * @module
 */

/** A synchronous SHA-256. */
export type Sha256Fn = (data: Uint8Array) => Uint8Array;

interface NodeCrypto {
  createHash(algorithm: string): { update(data: Uint8Array): { digest(): Uint8Array } };
}

/** Returns node:crypto's SHA-256, or `undefined` where the runtime has none (browsers). */
export async function loadNativeSha256(): Promise<Sha256Fn | undefined> {
  const specifier = "node:crypto"; // a variable keeps bundlers from resolving it
  let crypto: NodeCrypto;
  try {
    crypto = await import(specifier) as NodeCrypto;
  } catch {
    return undefined;
  }
  if (typeof crypto.createHash !== "function") return undefined;
  return (data: Uint8Array): Uint8Array => {
    const digest = crypto.createHash("sha256").update(data).digest();
    return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
  };
}
