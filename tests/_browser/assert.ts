/**
 * Browser stand-in for `node:assert/strict`, for the Chromium run of the test runner
 * (scripts/test/bundle.mjs aliases the import to this module).
 *
 * Only what the tests use (grep `assert\.` in tests/): ok, equal, notEqual, deepEqual,
 * deepStrictEqual, match, doesNotMatch, throws, doesNotThrow, rejects, fail. Comparisons follow
 * node's strict mode: `Object.is` for primitives (NaN equals NaN, 0 differs from -0), same
 * prototypes, and element-wise for arrays, typed arrays, ArrayBuffer, Map, Set, Date, RegExp and
 * errors. A test that needs another assertion fails to load in Chromium (the function is missing)
 * until it is added here. Why a shim rather than the npm `assert` package: that one brings node's
 * `util` and `process` polyfills into every bundle for the same dozen functions.
 *
 * Not a test file: it must never match `*.test.ts`.
 *
 * @module
 */

/** The error thrown by every failing assertion. */
export class AssertionError extends Error {
  actual: unknown;
  expected: unknown;
  operator: string;
  generatedMessage: boolean;
  code: "ERR_ASSERTION" = "ERR_ASSERTION";
  constructor(
    options: { message: string; actual?: unknown; expected?: unknown; operator: string; generated: boolean },
  ) {
    super(options.message);
    this.name = "AssertionError";
    this.actual = options.actual;
    this.expected = options.expected;
    this.operator = options.operator;
    this.generatedMessage = options.generated;
  }
}

type Message = string | Error | undefined;

function raise(
  message: Message,
  generated: string,
  actual: unknown,
  expected: unknown,
  operator: string,
): never {
  if (message instanceof Error) throw message;
  throw new AssertionError({
    message: message ?? generated,
    actual,
    expected,
    operator,
    generated: message === undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// inspect: a small, bounded value formatter for messages
// ---------------------------------------------------------------------------------------------

const MAX_ITEMS = 50;
const MAX_LENGTH = 2000;

/** Formats a value for an assertion message (bounded in depth, items and length). */
export function inspect(value: unknown, depth = 3): string {
  const out = format(value, depth, new Set());
  return out.length > MAX_LENGTH ? out.slice(0, MAX_LENGTH) + "… (truncated)" : out;
}

const quote = (s: string): string =>
  "'" + s.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n") + "'";
const formatKey = (k: string): string => /^[A-Za-z_$][\w$]*$/.test(k) ? k : quote(k);

function list(shown: string[], total: number): string {
  return [...shown, ...(total > shown.length ? [`... ${total - shown.length} more items`] : [])].join(", ");
}

function format(v: unknown, depth: number, seen: Set<unknown>): string {
  if (typeof v === "string") return quote(v);
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "function") return `[Function: ${v.name || "(anonymous)"}]`;
  if (v === null || typeof v !== "object") return String(v);
  if (seen.has(v)) return "[Circular]";
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? "Invalid Date" : v.toISOString();
  if (v instanceof RegExp) return String(v);
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (depth < 0) return Array.isArray(v) ? "[Array]" : "[Object]";
  seen.add(v);
  try {
    const inner = (x: unknown) => format(x, depth - 1, seen);
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const arr = v as unknown as ArrayLike<number | bigint>;
      const shown = Array.from({ length: Math.min(arr.length, MAX_ITEMS) }, (_, i) => inner(arr[i]));
      return `${v.constructor.name}(${arr.length}) [ ${list(shown, arr.length)} ]`;
    }
    if (v instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${v.byteLength} }`;
    if (Array.isArray(v)) return `[ ${list(v.slice(0, MAX_ITEMS).map(inner), v.length)} ]`;
    if (v instanceof Map) {
      const shown = [...v].slice(0, MAX_ITEMS).map(([k, x]) => `${inner(k)} => ${inner(x)}`);
      return `Map(${v.size}) { ${list(shown, v.size)} }`;
    }
    if (v instanceof Set) return `Set(${v.size}) { ${list([...v].slice(0, MAX_ITEMS).map(inner), v.size)} }`;
    const keys = Object.keys(v);
    const proto = Object.getPrototypeOf(v);
    const prefix = proto === null
      ? "[Object: null prototype] "
      : proto !== Object.prototype && proto.constructor?.name
      ? proto.constructor.name + " "
      : "";
    const shown = keys.slice(0, MAX_ITEMS).map((k) =>
      `${formatKey(k)}: ${inner((v as Record<string, unknown>)[k])}`
    );
    return keys.length ? `${prefix}{ ${list(shown, keys.length)} }` : `${prefix}{}`;
  } finally {
    seen.delete(v);
  }
}

// ---------------------------------------------------------------------------------------------
// strict deep equality: null when equal, otherwise the path and reason of the first difference
// ---------------------------------------------------------------------------------------------

const short = (v: unknown): string => format(v, 0, new Set());
const pathKey = (k: string): string => /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${quote(k)}]`;
const isObject = (v: unknown): v is object =>
  v !== null && (typeof v === "object" || typeof v === "function");

/** Compares two values as node's deepStrictEqual does; null when equal. */
export function compare(a: unknown, b: unknown, path = "", memo: [unknown, unknown][] = []): string | null {
  const where = path || "value";
  if (Object.is(a, b)) return null;
  if (!isObject(a) || !isObject(b) || typeof a === "function" || typeof b === "function") {
    return `${where}: ${format(a, 1, new Set())} !== ${format(b, 1, new Set())}`;
  }
  const pa = Object.getPrototypeOf(a), pb = Object.getPrototypeOf(b);
  if (pa !== pb) return `${where}: prototypes differ (${pa?.constructor?.name} vs ${pb?.constructor?.name})`;
  if (memo.some(([x, y]) => x === a && y === b)) return null;
  memo.push([a, b]);
  try {
    return compareObjects(a, b, path, memo);
  } finally {
    memo.pop();
  }
}

function compareObjects(a: object, b: object, path: string, memo: [unknown, unknown][]): string | null {
  const where = path || "value";
  if (a instanceof Date) {
    if (!Object.is(a.getTime(), (b as Date).getTime())) return `${where}: ${short(a)} !== ${short(b)}`;
  } else if (a instanceof RegExp) {
    if (String(a) !== String(b)) return `${where}: ${a} !== ${b}`;
  } else if (a instanceof Error) {
    const y = b as Error;
    if (a.name !== y.name || a.message !== y.message) return `${where}: ${short(a)} !== ${short(y)}`;
  } else if (a instanceof ArrayBuffer || ArrayBuffer.isView(a)) {
    const x = (a instanceof ArrayBuffer ? new Uint8Array(a) : a) as unknown as ArrayLike<unknown>;
    const y = (b instanceof ArrayBuffer ? new Uint8Array(b) : b) as unknown as ArrayLike<unknown>;
    if (x.length !== y.length) return `${where}: length ${x.length} !== ${y.length}`;
    for (let i = 0; i < x.length; i++) {
      if (!Object.is(x[i], y[i])) return `${path}[${i}]: ${short(x[i])} !== ${short(y[i])}`;
    }
    return null;
  } else if (a instanceof Map) {
    const y = b as Map<unknown, unknown>;
    if (a.size !== y.size) return `${where}: Map size ${a.size} !== ${y.size}`;
    for (const [k, v] of a) {
      if (!y.has(k)) return `${where}: Map key ${short(k)} missing in expected`;
      const d = compare(v, y.get(k), `${where}.get(${short(k)})`, memo);
      if (d) return d;
    }
    return null;
  } else if (a instanceof Set) {
    const y = b as Set<unknown>;
    if (a.size !== y.size) return `${where}: Set size ${a.size} !== ${y.size}`;
    const candidates = [...y].filter((v) => !a.has(v));
    for (const v of a) {
      if (y.has(v)) continue;
      const i = isObject(v) ? candidates.findIndex((c) => compare(v, c, "", memo) === null) : -1;
      if (i < 0) return `${where}: Set value ${short(v)} missing in expected`;
      candidates.splice(i, 1);
    }
    return null;
  } else if (Array.isArray(a) && a.length !== (b as unknown[]).length) {
    return `${where}: length ${a.length} !== ${(b as unknown[]).length}`;
  }
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some((k) => !Object.prototype.propertyIsEnumerable.call(b, k))) {
    const onlyA = ka.filter((k) => !kb.includes(k)).map(formatKey).join(", ") || "-";
    const onlyB = kb.filter((k) => !ka.includes(k)).map(formatKey).join(", ") || "-";
    return `${where}: keys differ (only in actual: ${onlyA}; only in expected: ${onlyB})`;
  }
  const ra = a as Record<string, unknown>, rb = b as Record<string, unknown>;
  for (const k of ka) {
    const d = compare(ra[k], rb[k], path + (Array.isArray(a) ? `[${k}]` : pathKey(k)), memo);
    if (d) return d;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// assertions
// ---------------------------------------------------------------------------------------------

function show(actual: unknown, expected: unknown, op: string): string {
  const a = inspect(actual), e = inspect(expected);
  if (a.length + e.length < 60 && !a.includes("\n") && !e.includes("\n")) return `${a} ${op} ${e}`;
  return `+ actual - expected\n\n+ ${a}\n- ${e}`;
}

/** Throws an AssertionError unless `value` is truthy. */
export function ok(value: unknown, message?: Message): asserts value {
  if (!value) {
    raise(
      message,
      `The expression evaluated to a falsy value:\n\n  assert.ok(${inspect(value)})\n`,
      value,
      true,
      "==",
    );
  }
}

/** Strict equality with `Object.is`. */
export function equal<T>(actual: unknown, expected: T, message?: Message): asserts actual is T {
  if (!Object.is(actual, expected)) {
    const text = `Expected values to be strictly equal:\n\n${show(actual, expected, "!==")}\n`;
    raise(message, text, actual, expected, "strictEqual");
  }
}

/** Fails when `Object.is(actual, expected)`. */
export function notEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (Object.is(actual, expected)) {
    const text = `Expected "actual" to be strictly unequal to: ${inspect(expected)}`;
    raise(message, text, actual, expected, "notStrictEqual");
  }
}

/** Deep equality in node's strict mode. */
export function deepEqual<T>(actual: unknown, expected: T, message?: Message): asserts actual is T {
  const d = compare(actual, expected);
  if (d !== null) {
    const text = `Expected values to be strictly deep-equal:\n${
      show(actual, expected, "!==")
    }\n\nfirst difference: ${d}\n`;
    raise(message, text, actual, expected, "deepStrictEqual");
  }
}

/** Throws an AssertionError (or `message` itself when it is an Error). */
export function fail(message?: Message): never {
  return raise(message, "Failed", undefined, undefined, "fail");
}

/** Fails unless `string` matches `regexp`. */
export function match(string: string, regexp: RegExp, message?: Message): void {
  if (typeof string !== "string" || !regexp.test(string)) {
    const text = `The input did not match the regular expression ${regexp}. Input:\n\n${inspect(string)}\n`;
    raise(message, text, string, regexp, "match");
  }
}

/** Fails when `string` matches `regexp`. */
export function doesNotMatch(string: string, regexp: RegExp, message?: Message): void {
  if (typeof string !== "string" || regexp.test(string)) {
    const text = `The input was expected to not match the regular expression ${regexp}. Input:\n\n${
      inspect(string)
    }\n`;
    raise(message, text, string, regexp, "doesNotMatch");
  }
}

/** What `throws`/`rejects` accept as the expected error: a RegExp, a class, a predicate or an object. */
export type ErrorMatcher =
  | RegExp
  | (new (...args: never[]) => unknown)
  | ((err: unknown) => boolean)
  | Record<string, unknown>;

const NO_ERROR = Symbol("no error");

function checkError(err: unknown, expected: unknown, message: Message, operator: string): void {
  if (expected === undefined) return;
  const fails = (text: string) => raise(message, text, err, expected, operator);
  const caught = err instanceof Error ? `${err.name}: ${err.message}` : inspect(err);
  if (expected instanceof RegExp) {
    if (!expected.test(String(err))) {
      fails(
        `The input did not match the regular expression ${expected}. Input:\n\n${inspect(String(err))}\n`,
      );
    }
  } else if (typeof expected === "function") {
    if (expected.prototype !== undefined && err instanceof (expected as new () => unknown)) return;
    if (expected === Error || Object.prototype.isPrototypeOf.call(Error, expected)) {
      fails(`The error is expected to be an instance of "${expected.name}". Received ${caught}`);
    }
    const result = (expected as (e: unknown) => unknown)(err);
    if (result !== true) {
      fails(
        `The validation function is expected to return "true". Received ${
          inspect(result)
        }\n\nCaught: ${caught}`,
      );
    }
  } else if (isObject(expected)) {
    if (!isObject(err)) fails(`The error is expected to be an object. Received ${inspect(err)}`);
    for (const [k, want] of Object.entries(expected)) {
      const got = (err as Record<string, unknown>)[k];
      if (want instanceof RegExp && typeof got === "string") {
        if (!want.test(got)) fails(`error.${k}: ${inspect(got)} does not match ${want}`);
      } else {
        const d = compare(got, want);
        if (d !== null) fails(`error.${k}: ${show(got, want, "!==")}\n\nfirst difference: ${d}`);
      }
    }
  } else throw new TypeError(`The "expected" argument must be a RegExp, class, function or object`);
}

function splitArgs(expected: unknown, message: Message): [unknown, Message] {
  return typeof expected === "string" ? [undefined, expected] : [expected, message];
}

const missing = (what: string, message: Message) =>
  `Missing expected ${what}${message ? `: ${message}` : "."}`;

/** Fails unless `fn` throws an error matching `expected`. */
export function throws(fn: () => unknown, expected?: ErrorMatcher | string, message?: Message): void {
  const [exp, msg] = splitArgs(expected, message);
  let err: unknown = NO_ERROR;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (err === NO_ERROR) raise(msg, missing("exception", msg), undefined, exp, "throws");
  checkError(err, exp, msg, "throws");
}

/** Fails when `fn` throws. */
export function doesNotThrow(fn: () => unknown, message?: Message): void {
  try {
    fn();
  } catch (e) {
    const text = `Got unwanted exception.\nActual message: "${e instanceof Error ? e.message : inspect(e)}"`;
    raise(message, text, e, undefined, "doesNotThrow");
  }
}

/** Fails unless the promise (or the promise returned by the function) rejects matching `expected`. */
export async function rejects(
  block: Promise<unknown> | (() => Promise<unknown>),
  expected?: ErrorMatcher | string,
  message?: Message,
): Promise<void> {
  const [exp, msg] = splitArgs(expected, message);
  let err: unknown = NO_ERROR;
  try {
    await (typeof block === "function" ? block() : block);
  } catch (e) {
    err = e;
  }
  if (err === NO_ERROR) raise(msg, missing("rejection", msg), undefined, exp, "rejects");
  checkError(err, exp, msg, "rejects");
}

/** `node:assert/strict`'s default export, with node's names for the strict comparisons. */
const assert = {
  ok,
  equal,
  strictEqual: equal,
  notEqual,
  deepEqual,
  deepStrictEqual: deepEqual,
  match,
  doesNotMatch,
  throws,
  doesNotThrow,
  rejects,
  fail,
  AssertionError,
};
export default assert;
export { deepEqual as deepStrictEqual, equal as strictEqual };
