/**
 * Browser stand-in for `node:assert` (legacy mode): `equal`/`deepEqual` are the loose variants,
 * everything else as in `node:assert/strict`; `assert.strict` is the strict API.
 * See `assert.ts`. Not a test file.
 *
 * @module
 */

import {
  AssertionError,
  deepStrictEqual,
  doesNotMatch,
  doesNotReject,
  doesNotThrow,
  fail,
  ifError,
  looseDeepEqual,
  looseEqual,
  looseNotDeepEqual,
  looseNotEqual,
  match,
  notDeepStrictEqual,
  notStrictEqual,
  ok,
  rejects,
  strict,
  strictEqual,
  throws,
} from "./assert.ts";

/** The legacy assertion API (default export of `node:assert`). */
export interface LegacyAssert {
  (value: unknown, message?: string | Error): asserts value;
  ok: typeof ok;
  equal: typeof looseEqual;
  notEqual: typeof looseNotEqual;
  deepEqual: typeof looseDeepEqual;
  notDeepEqual: typeof looseNotDeepEqual;
  strictEqual: typeof strictEqual;
  notStrictEqual: typeof notStrictEqual;
  deepStrictEqual: typeof deepStrictEqual;
  notDeepStrictEqual: typeof notDeepStrictEqual;
  throws: typeof throws;
  doesNotThrow: typeof doesNotThrow;
  rejects: typeof rejects;
  doesNotReject: typeof doesNotReject;
  match: typeof match;
  doesNotMatch: typeof doesNotMatch;
  fail: typeof fail;
  ifError: typeof ifError;
  AssertionError: typeof AssertionError;
  strict: typeof strict;
}

const legacy = ((value: unknown, message?: string | Error): void => ok(value, message)) as LegacyAssert;
Object.assign(legacy, {
  ok,
  equal: looseEqual,
  notEqual: looseNotEqual,
  deepEqual: looseDeepEqual,
  notDeepEqual: looseNotDeepEqual,
  strictEqual,
  notStrictEqual,
  deepStrictEqual,
  notDeepStrictEqual,
  throws,
  doesNotThrow,
  rejects,
  doesNotReject,
  match,
  doesNotMatch,
  fail,
  ifError,
  AssertionError,
  strict,
});

export default legacy;
export {
  AssertionError,
  deepStrictEqual,
  doesNotMatch,
  doesNotReject,
  doesNotThrow,
  fail,
  ifError,
  looseDeepEqual as deepEqual,
  looseEqual as equal,
  looseNotDeepEqual as notDeepEqual,
  looseNotEqual as notEqual,
  match,
  notDeepStrictEqual,
  notStrictEqual,
  ok,
  rejects,
  strict,
  strictEqual,
  throws,
};
