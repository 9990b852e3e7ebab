/**
 * Local writes as records: the fields of a `put` (nested objects flattened
 * into linked child nodes) or the tombstones of a `delete`, all stamped with
 * one state of this replica's clock and its actor id. They always win their
 * merge (the clock is ticked past every state this replica has seen), so
 * the commit queue stores them without reading the store first.
 *
 * @module
 */
import type { Value } from "../value.ts";
import { encodeValue, TOMBSTONE } from "../value_encoding.ts";
import type { FieldRecord } from "../store.ts";

/** The records of a `put`, its nodes as `flattenFields` gives them ([soul, field, value, field, value…]), stamped with one state. */
export function putRecords(
  fields: readonly (readonly unknown[])[],
  stateHi: number,
  stateLo: number,
  actorHi: number,
  actorLo: number,
): FieldRecord[] {
  const records: FieldRecord[] = [];
  for (const node of fields) {
    const s = node[0] as string;
    for (let i = 1; i < node.length; i += 2) {
      records.push({
        soul: s,
        field: node[i] as string,
        value: encodeValue(node[i + 1] as Value),
        stateHi,
        stateLo,
        actorHi,
        actorLo,
      });
    }
  }
  return records;
}

/** The tombstones that delete `fields` of `soul`, stamped with one state. */
export function tombstoneRecords(
  soul: string,
  fields: readonly string[],
  stateHi: number,
  stateLo: number,
  actorHi: number,
  actorLo: number,
): FieldRecord[] {
  return fields.map((field) => ({ soul, field, value: TOMBSTONE, stateHi, stateLo, actorHi, actorLo }));
}
