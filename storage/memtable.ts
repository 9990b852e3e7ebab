/**
 * Records committed to a journal file but not yet folded into SQLite
 * (storage/journal.ts), kept in memory so that reads see them: the latest
 * record of each (soul, field), and metadata.
 *
 * @module
 */
import { compareCodePoints } from "../core/order.ts";
import type { JournalFile } from "./journal.ts";
import type { StoredRecord } from "../core/store.ts";

/** Bytes a held record costs beyond its strings and bytes (object, map entry), roughly, on V8. */
const RECORD_OVERHEAD = 160;

/** The records and metadata of one journal file, held in memory until they are folded into SQLite. */
export class Memtable {
  /** The journal file holding exactly these commits. */
  readonly journal: JournalFile;
  readonly nodes = new Map<string, Map<string, StoredRecord>>();
  readonly meta = new Map<string, string>();
  /** Records held (the latest per key). */
  count = 0;
  /** Rough memory held, in bytes. */
  bytes = 0;

  constructor(journal: JournalFile) {
    this.journal = journal;
  }

  get empty(): boolean {
    return this.count === 0 && this.meta.size === 0;
  }

  put(r: StoredRecord): void {
    const prev = addRecord(this.nodes, r);
    if (prev === undefined) this.count++;
    else this.bytes -= size(prev);
    this.bytes += size(r);
  }
}

/**
 * A memtable being folded into SQLite, a part at a time: its nodes in a
 * fixed order, how far the fold has come (`next`, in nodes) and how many of
 * its records are left to fold.
 */
export interface FrozenMemtable {
  readonly mem: Memtable;
  readonly nodes: [string, Map<string, StoredRecord>][];
  next: number;
  left: number;
}

/** `mem` frozen for a fold, none of it folded yet. */
export function freeze(mem: Memtable): FrozenMemtable {
  return { mem, nodes: [...mem.nodes], next: 0, left: mem.count };
}

/**
 * Sets `r` as the record of its (soul, field) in `nodes` (soul → field →
 * record); returns the record it replaced.
 */
export function addRecord(
  nodes: Map<string, Map<string, StoredRecord>>,
  r: StoredRecord,
): StoredRecord | undefined {
  let node = nodes.get(r.soul);
  if (node === undefined) nodes.set(r.soul, node = new Map());
  const prev = node.get(r.field);
  node.set(r.field, r);
  return prev;
}

function size(r: StoredRecord): number {
  return RECORD_OVERHEAD + (r.soul.length + r.field.length) * 2 + r.value.length + (r.sig?.length ?? 0);
}

/**
 * A node's fields as stored in SQLite (`base`, in field order) with newer
 * records laid over them (`layers`, oldest first), in field order.
 */
export function overlay(
  base: StoredRecord[],
  layers: readonly (ReadonlyMap<string, StoredRecord> | undefined)[],
): StoredRecord[] {
  let byField: Map<string, StoredRecord> | undefined;
  for (const layer of layers) {
    if (layer === undefined) continue;
    if (byField === undefined) {
      byField = new Map();
      for (const r of base) byField.set(r.field, r);
    }
    for (const [f, r] of layer) byField.set(f, r);
  }
  if (byField === undefined) return base;
  return [...byField.values()].sort((a, b) => compareCodePoints(a.field, b.field));
}
