/**
 * The HAM merge of the `js` kernels: a batch of twelve u32 columns in one
 * buffer, and the lexicographic tuple comparison that decides each pair.
 *
 * @module
 */
import { checkCount, checkMergeLength, disposedError } from "../_check.ts";
import type { MergeBatch, MergeColumns } from "../types.ts";
import { mergeSides } from "../_merge_columns.ts";

/** The brand of batches made by these kernels; `merge` accepts no others. */
class JsMergeBatch implements MergeBatch {
  readonly capacity: number;
  readonly a: MergeColumns;
  readonly b: MergeColumns;
  readonly out: Uint8Array;
  #disposed = false;

  constructor(capacity: number) {
    this.capacity = capacity;
    // All twelve columns and the output share one buffer.
    const buffer = new ArrayBuffer(capacity * (12 * 4 + 1));
    const column = (i: number) => new Uint32Array(buffer, i * capacity * 4, capacity);
    ({ a: this.a, b: this.b } = mergeSides(column));
    this.out = new Uint8Array(buffer, 12 * 4 * capacity, capacity);
  }

  dispose(): void {
    this.#disposed = true;
  }

  static check(batch: unknown): asserts batch is JsMergeBatch {
    if (!(typeof batch === "object" && batch !== null && #disposed in batch)) {
      throw new TypeError("batch was not created by createMergeBatch of these kernels");
    }
    if ((batch as JsMergeBatch).#disposed) throw disposedError("merge batch");
  }
}

export function createMergeBatch(capacity: number): MergeBatch {
  checkCount(capacity, "capacity");
  return new JsMergeBatch(capacity);
}

export function merge(batch: MergeBatch, length: number): Uint8Array {
  JsMergeBatch.check(batch);
  checkMergeLength(length, batch.capacity);
  const {
    hlcHi: aHlcHi,
    hlcLo: aHlcLo,
    hashHi: aHashHi,
    hashLo: aHashLo,
    actorHi: aActorHi,
    actorLo: aActorLo,
  } = batch.a;
  const {
    hlcHi: bHlcHi,
    hlcLo: bHlcLo,
    hashHi: bHashHi,
    hashLo: bHashLo,
    actorHi: bActorHi,
    actorLo: bActorLo,
  } = batch.b;
  const out = batch.out;
  for (let i = 0; i < length; i++) {
    // Compare the tuples field by field; Uint32Array reads are already unsigned.
    let x = aHlcHi[i], y = bHlcHi[i];
    if (x === y) {
      x = aHlcLo[i];
      y = bHlcLo[i];
      if (x === y) {
        x = aHashHi[i];
        y = bHashHi[i];
        if (x === y) {
          x = aHashLo[i];
          y = bHashLo[i];
          if (x === y) {
            x = aActorHi[i];
            y = bActorHi[i];
            if (x === y) {
              x = aActorLo[i];
              y = bActorLo[i];
            }
          }
        }
      }
    }
    out[i] = y > x ? 1 : 0;
  }
  return out.subarray(0, length);
}
