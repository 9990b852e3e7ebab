/**
 * The runtime's native SHA-256 (node:crypto on Deno, Bun and Node), loaded
 * with a dynamic import so that browser bundles never pull a `node:` module.
 *
 * @module
 */
import { importRuntimeModule, isServerRuntime } from "./detect.ts";

/** A synchronous SHA-256; `undefined` while the native module is still loading. */
export type Sha256Fn = (data: Uint8Array) => Uint8Array | undefined;

interface NodeCrypto {
  createHash(algorithm: string): { update(data: Uint8Array): { digest(): Uint8Array } };
}

/**
 * Node:crypto's SHA-256, loaded on first use, or `undefined` where the
 * runtime has no `node:` modules (browsers).
 *
 * The module is imported only when the first large input is hashed (that
 * call and any before the import finishes answer `undefined`, so the
 * kernels hash them): on Deno, importing `node:crypto` costs about 3 MB of memory,
 * which a database that never hashes large inputs need not pay.
 */
export function loadNativeSha256(): Sha256Fn | undefined {
  if (!isServerRuntime()) return undefined;
  let crypto: NodeCrypto | undefined;
  let loading = false;
  return (data: Uint8Array): Uint8Array | undefined => {
    if (crypto === undefined) {
      if (!loading) {
        loading = true;
        importRuntimeModule<NodeCrypto>("node:crypto").then(
          (m) => {
            if (typeof m.createHash === "function") crypto = m;
          },
          () => {}, // no node:crypto after all: the kernels keep hashing everything
        );
      }
      return undefined;
    }
    const digest = crypto.createHash("sha256").update(data).digest();
    return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
  };
}
