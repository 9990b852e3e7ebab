/** Kernel selection: auto prefers SIMD, then scalar WASM, then JS; forcing works; native hash plugs in. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  detectWasm,
  NATIVE_HASH_MIN_BYTES,
  parseKernelChoice,
  selectKernels,
  withNativeHash,
} from "../core/kernels/mod.ts";
import { loadKernels } from "../mod.ts";
import { loadNativeSha256 } from "../runtime/native_hash.ts";

const hasWasm = typeof WebAssembly === "object";
const noSimd = { validate: (bytes: BufferSource) => !(bytes instanceof Uint8Array && bytes.includes(0xfd)) };

describe("kernel selection", () => {
  it("detects SIMD on this runtime", () => {
    assert.equal(detectWasm(), "simd", "Deno, Bun and Chromium all support WASM SIMD");
    assert.equal(detectWasm(null), "none");
    assert.equal(detectWasm(noSimd), "scalar");
  });

  it("auto picks WASM-SIMD, then scalar WASM, then JS", async () => {
    assert.equal((await selectKernels({})).name, "wasm-simd");
    assert.equal((await selectKernels({ webAssembly: noSimd })).name, "wasm");
    assert.equal((await selectKernels({ webAssembly: null })).name, "js");
  });

  it("auto falls back to JS when the runtime has no WebAssembly at all", async () => {
    const saved = globalThis.WebAssembly;
    // deno-lint-ignore no-explicit-any
    delete (globalThis as any).WebAssembly;
    try {
      const k = await selectKernels({ kernels: "auto" });
      assert.equal(k.name, "js");
      assert.equal(k.dot(new Float32Array([1, 2]), new Float32Array([3, 4])), 11);
      await assert.rejects(selectKernels({ kernels: "wasm" }), /no WebAssembly/);
    } finally {
      globalThis.WebAssembly = saved;
    }
  });

  it("forcing js or wasm is honoured", async () => {
    assert.equal((await selectKernels({ kernels: "js" })).name, "js");
    assert.equal((await selectKernels({ kernels: "wasm" })).name, hasWasm ? "wasm-simd" : "js");
    assert.equal((await selectKernels({ kernels: "wasm", webAssembly: noSimd })).name, "wasm");
    await assert.rejects(selectKernels({ kernels: "wasm", webAssembly: null }), /no WebAssembly/);
  });

  it("rejects unknown choices with a clear error", async () => {
    assert.throws(
      () => parseKernelChoice("fast", "LATTICE_KERNELS"),
      /LATTICE_KERNELS must be "auto", "wasm" or "js", got "fast"/,
    );
    // deno-lint-ignore no-explicit-any
    await assert.rejects(selectKernels({ kernels: "gpu" as any }), RangeError);
  });

  it("loadKernels honours an explicit choice and reports the hash backend", async () => {
    const k = await loadKernels({ kernels: "js", nativeHash: false });
    assert.equal(k.name, "js");
    assert.equal(k.hashBackend, "js");
  });

  it("routes large inputs to a native hash and small ones to the kernels, with identical digests", async () => {
    const base = await selectKernels({ kernels: "js" });
    const calls: number[] = [];
    const k = withNativeHash(base, (d) => {
      calls.push(d.length);
      return base.sha256(d);
    });
    assert.equal(k.hashBackend, "native");
    const big = new Uint8Array(NATIVE_HASH_MIN_BYTES).fill(7), small = new Uint8Array(10);
    assert.deepEqual(k.sha256(big), base.sha256(big));
    assert.deepEqual(k.sha256(small), base.sha256(small));
    assert.deepEqual(calls, [NATIVE_HASH_MIN_BYTES]);
    const data = new Uint8Array(3 * NATIVE_HASH_MIN_BYTES);
    const ends = new Uint32Array([NATIVE_HASH_MIN_BYTES * 2, NATIVE_HASH_MIN_BYTES * 2 + 1, data.length]);
    assert.deepEqual(k.sha256Batch(data, ends), base.sha256Batch(data, ends));
    assert.throws(() => k.sha256Batch(data, new Uint32Array([5, 4])), RangeError);
    // A native hash that is not ready yet answers undefined: the kernels hash instead.
    const notYet = withNativeHash(base, () => undefined);
    assert.deepEqual(notYet.sha256(big), base.sha256(big));
    assert.deepEqual(notYet.sha256Batch(data, ends), base.sha256Batch(data, ends));
  });

  it("loads node:crypto on the first large input, not before (servers); none in browsers", async () => {
    const native = loadNativeSha256();
    if (!("Deno" in globalThis) && !("Bun" in globalThis)) {
      assert.equal(native, undefined);
      return;
    }
    assert.ok(native);
    const big = new Uint8Array(4096).fill(3);
    const want = new Uint8Array(await crypto.subtle.digest("SHA-256", big));
    assert.equal(native(big), undefined, "the first call starts loading and answers undefined");
    let got: Uint8Array | undefined;
    for (let i = 0; i < 100 && got === undefined; i++) {
      await new Promise((r) => setTimeout(r, 10));
      got = native(big);
    }
    assert.deepEqual(got, want);
  });
});
