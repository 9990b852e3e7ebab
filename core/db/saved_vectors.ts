/**
 * The saved vector indexes: each declared index's HNSW graph and soul map
 * (hnsw_nearest.ts `saved`) written to the store's auxiliary data
 * (`Store.writeAux`, a file beside SQLite) when the database closes, with
 * the store's seq at that moment, and restored on open instead of rebuilt:
 * building the graph of 100k × 384 vectors takes ~75 s, restoring it ~0.6 s.
 *
 * A saved index is used only when its seq equals the store's last seq on
 * open, so a write committed after the save (then a crash, before the next
 * close saved again) means a rebuild, never a graph missing that write; the
 * store itself refuses aux data newer than the commits that survived
 * (`Store.readAux`). A save that does not parse, names another declaration
 * or whose soul map does not fit its graph also means a rebuild.
 *
 * Format: two parts, a UTF-8 JSON header `{ format, version, seq, spec,
 * ids, souls }` and the graph's bytes (`HnswIndex.serialize`, versioned).
 *
 * @module
 */
import type { SavedHnsw } from "./hnsw_nearest.ts";
import { type IndexSpec, sameSpec } from "./vector_spec.ts";

const FORMAT = "lattice-vector-index";
const VERSION = 1;

/** Name of the saved index of the `position`-th declared index among the store's auxiliary data. */
export function auxName(position: number): string {
  return `vector-index-${position}`;
}

/** The parts to write for index `spec` as `saved`, holding every commit up to `seq`. */
export function savedParts(spec: IndexSpec, seq: number, saved: SavedHnsw): Uint8Array[] {
  const header = { format: FORMAT, version: VERSION, seq, spec, ids: [...saved.ids], souls: saved.souls };
  return [new TextEncoder().encode(JSON.stringify(header)), saved.graph];
}

/**
 * The saved index in `parts` if it was saved for `spec` at `seq` (the
 * store's last seq now), else `undefined`. The graph's bytes are checked
 * when they are restored.
 */
export function readSaved(
  parts: readonly Uint8Array[] | undefined,
  spec: IndexSpec,
  seq: number,
): SavedHnsw | undefined {
  if (parts === undefined || parts.length !== 2) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(parts[0]));
  } catch {
    return undefined;
  }
  if (typeof header !== "object" || header === null) return undefined;
  const h = header as Record<string, unknown>;
  if (h.format !== FORMAT || h.version !== VERSION || h.seq !== seq) return undefined;
  const s = h.spec as IndexSpec;
  if (typeof s !== "object" || s === null || !sameSpec(s, spec)) return undefined;
  const { ids, souls } = h;
  if (!Array.isArray(ids) || !Array.isArray(souls) || ids.length !== souls.length) return undefined;
  if (!ids.every((id) => Number.isInteger(id) && id >= 0 && id <= 0xffffffff)) return undefined;
  return { ids: Uint32Array.from(ids), souls: souls as string[], graph: parts[1] };
}
