/**
 * Browser stand-in for `node:assert/strict` (and, through `assert_legacy.ts`, `node:assert`).
 *
 * `scripts/test.mjs` bundles each browser-eligible test file with esbuild and aliases the
 * `node:assert*` imports to these modules. Only what the test suite uses is provided: ok, equal,
 * notEqual, strictEqual, notStrictEqual, deepEqual, deepStrictEqual, notDeepEqual,
 * notDeepStrictEqual, throws, doesNotThrow, rejects, doesNotReject, match, doesNotMatch, fail,
 * ifError and AssertionError. Strict comparisons follow node's strict mode: `Object.is` for
 * primitives (NaN equals NaN, 0 differs from -0), same prototypes, typed arrays, Map, Set, Date,
 * RegExp, boxed primitives, errors and circular structures.
 *
 * Not a test file: it must never match `*.test.ts`.
 *
 * @module
 */

/** Options accepted by the {@link AssertionError} constructor (as in node). */
export interface AssertionErrorOptions {
  message?: string;
  actual?: unknown;
  expected?: unknown;
  operator?: string;
}

/** The error thrown by every failing assertion. */
export class AssertionError extends Error {
  actual: unknown;
  expected: unknown;
  operator: string;
  generatedMessage: boolean;
  code: "ERR_ASSERTION" = "ERR_ASSERTION";
  constructor(options: AssertionErrorOptions = {}) {
    super(
      options.message ??
        `${inspect(options.actual)} ${options.operator ?? "=="} ${inspect(options.expected)}`,
    );
    this.name = "AssertionError";
    this.actual = options.actual;
    this.expected = options.expected;
    this.operator = options.operator ?? "";
    this.generatedMessage = options.message === undefined;
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
  const err = new AssertionError({ message: message ?? generated, actual, expected, operator });
  err.generatedMessage = message === undefined;
  throw err;
}

// ---------------------------------------------------------------------------------------------
// inspect: a small, bounded value formatter for messages
// ---------------------------------------------------------------------------------------------

const MAX_ITEMS = 50;
const MAX_LENGTH = 2000;

/** Formats a value for an assertion message (bounded in depth, items and length). */
export function inspect(value: unknown, depth = 3): string {
  const out = fmt(value, depth, new Set());
  return out.length > MAX_LENGTH ? out.slice(0, MAX_LENGTH) + "… (truncated)" : out;
}

function quote(s: string): string {
  return "'" + s.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n") + "'";
}

function fmtKey(k: string | symbol): string {
  if (typeof k === "symbol") return `[${String(k)}]`;
  return /^[A-Za-z_$][\w$]*$/.test(k) ? k : quote(k);
}

function items(list: string[], total: number): string {
  const more = total > list.length ? [`... ${total - list.length} more items`] : [];
  return [...list, ...more].join(", ");
}

function fmt(v: unknown, depth: number, seen: Set<unknown>): string {
  switch (typeof v) {
    case "string":
      return quote(v);
    case "number":
      return Object.is(v, -0) ? "-0" : String(v);
    case "bigint":
      return `${v}n`;
    case "symbol":
      return String(v);
    case "undefined":
      return "undefined";
    case "boolean":
      return String(v);
    case "function":
      return `[Function: ${(v as { name?: string }).name || "(anonymous)"}]`;
  }
  if (v === null) return "null";
  const o = v as object;
  if (seen.has(o)) return "[Circular]";
  if (o instanceof Date) return Number.isNaN(o.getTime()) ? "Invalid Date" : o.toISOString();
  if (o instanceof RegExp) return String(o);
  if (o instanceof Error) return `${o.name}: ${o.message}`;
  if (depth < 0) return Array.isArray(o) ? "[Array]" : "[Object]";
  seen.add(o);
  try {
    if (ArrayBuffer.isView(o) && !(o instanceof DataView)) {
      const arr = o as unknown as ArrayLike<number | bigint>;
      const shown: string[] = [];
      for (let i = 0; i < Math.min(arr.length, MAX_ITEMS); i++) shown.push(fmt(arr[i], depth - 1, seen));
      return `${o.constructor.name}(${arr.length}) [ ${items(shown, arr.length)} ]`;
    }
    if (o instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${o.byteLength} }`;
    if (Array.isArray(o)) {
      const shown = o.slice(0, MAX_ITEMS).map((x) => fmt(x, depth - 1, seen));
      return `[ ${items(shown, o.length)} ]`;
    }
    if (o instanceof Map) {
      const shown: string[] = [];
      for (const [k, x] of o) {
        if (shown.length >= MAX_ITEMS) break;
        shown.push(`${fmt(k, depth - 1, seen)} => ${fmt(x, depth - 1, seen)}`);
      }
      return `Map(${o.size}) { ${items(shown, o.size)} }`;
    }
    if (o instanceof Set) {
      const shown: string[] = [];
      for (const x of o) {
        if (shown.length >= MAX_ITEMS) break;
        shown.push(fmt(x, depth - 1, seen));
      }
      return `Set(${o.size}) { ${items(shown, o.size)} }`;
    }
    const keys = Object.keys(o);
    const proto = Object.getPrototypeOf(o);
    const prefix = proto === null
      ? "[Object: null prototype] "
      : proto !== Object.prototype && proto.constructor?.name
      ? proto.constructor.name + " "
      : "";
    const shown = keys.slice(0, MAX_ITEMS).map((k) =>
      `${fmtKey(k)}: ${fmt((o as Record<string, unknown>)[k], depth - 1, seen)}`
    );
    return keys.length ? `${prefix}{ ${items(shown, keys.length)} }` : `${prefix}{}`;
  } finally {
    seen.delete(o);
  }
}

// ---------------------------------------------------------------------------------------------
// deep equality (returns null when equal, otherwise the path and reason of the first difference)
// ---------------------------------------------------------------------------------------------

type Diff = string | null;

function pathKey(k: unknown): string {
  if (typeof k === "number") return `[${k}]`;
  if (typeof k === "string") return /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${quote(k)}]`;
  return `[${fmt(k, 0, new Set())}]`;
}

function tag(o: object): string {
  return Object.prototype.toString.call(o);
}

function ownKeys(o: object, strict: boolean): (string | symbol)[] {
  const keys: (string | symbol)[] = Object.keys(o);
  if (strict) {
    for (const s of Object.getOwnPropertySymbols(o)) {
      if (Object.prototype.propertyIsEnumerable.call(o, s)) keys.push(s);
    }
  }
  return keys;
}

function primitiveEqual(a: unknown, b: unknown, strict: boolean): boolean {
  if (strict) return Object.is(a, b);
  // deno-lint-ignore eqeqeq
  return a == b || (a !== a && b !== b);
}

/** Compares two values; null when deep-equal, otherwise a description of the first difference. */
export function compare(a: unknown, b: unknown, strict: boolean): Diff {
  return cmp(a, b, strict, "", []);
}

function cmp(a: unknown, b: unknown, strict: boolean, path: string, memo: [unknown, unknown][]): Diff {
  if (a === b) {
    return strict && !Object.is(a, b)
      ? `${path || "value"}: ${fmt(a, 0, new Set())} !== ${fmt(b, 0, new Set())}`
      : null;
  }
  const ta = typeof a, tb = typeof b;
  const aObj = a !== null && (ta === "object" || ta === "function");
  const bObj = b !== null && (tb === "object" || tb === "function");
  if (!aObj || !bObj) {
    if (!aObj && !bObj && primitiveEqual(a, b, strict)) return null;
    return `${path || "value"}: ${fmt(a, 1, new Set())} !== ${fmt(b, 1, new Set())}`;
  }
  const ao = a as object, bo = b as object;
  if (ta === "function" || tb === "function") return `${path || "value"}: functions differ`;
  if (strict && Object.getPrototypeOf(ao) !== Object.getPrototypeOf(bo)) {
    return `${path || "value"}: prototypes differ (${ctorName(ao)} vs ${ctorName(bo)})`;
  }
  if (tag(ao) !== tag(bo)) return `${path || "value"}: ${tag(ao)} vs ${tag(bo)}`;
  for (const [x, y] of memo) if (x === ao && y === bo) return null;
  memo.push([ao, bo]);
  try {
    return cmpObjects(ao, bo, strict, path, memo);
  } finally {
    memo.pop();
  }
}

function ctorName(o: object): string {
  const p = Object.getPrototypeOf(o);
  return p === null ? "null prototype" : p.constructor?.name ?? "anonymous";
}

function cmpObjects(a: object, b: object, strict: boolean, path: string, memo: [unknown, unknown][]): Diff {
  const where = path || "value";
  if (a instanceof Date) {
    const x = a.getTime(), y = (b as Date).getTime();
    if (!Object.is(x, y)) return `${where}: ${fmt(a, 0, new Set())} !== ${fmt(b, 0, new Set())}`;
  } else if (a instanceof RegExp) {
    const y = b as RegExp;
    if (a.source !== y.source || a.flags !== y.flags || a.lastIndex !== y.lastIndex) {
      return `${where}: ${String(a)} !== ${String(y)}`;
    }
  } else if (isBoxed(a)) {
    if (!Object.is(a.valueOf(), (b as { valueOf(): unknown }).valueOf())) {
      return `${where}: boxed values differ`;
    }
  } else if (a instanceof Error) {
    const y = b as Error;
    if (a.message !== y.message) return `${where}.message: ${quote(a.message)} !== ${quote(y.message)}`;
    if (a.name !== y.name) return `${where}.name: ${quote(a.name)} !== ${quote(y.name)}`;
  } else if (
    a instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && a instanceof SharedArrayBuffer)
  ) {
    const d = cmpBytes(new Uint8Array(a), new Uint8Array(b as ArrayBuffer), where);
    if (d) return d;
  } else if (a instanceof DataView) {
    const y = b as DataView;
    const d = cmpBytes(
      new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
      new Uint8Array(y.buffer, y.byteOffset, y.byteLength),
      where,
    );
    if (d) return d;
  } else if (ArrayBuffer.isView(a)) {
    const x = a as unknown as ArrayLike<number | bigint>, y = b as unknown as ArrayLike<number | bigint>;
    if (x.length !== y.length) return `${where}: length ${x.length} !== ${y.length}`;
    const float = a instanceof Float32Array || a instanceof Float64Array ||
      (typeof (globalThis as { Float16Array?: unknown }).Float16Array === "function" &&
        a instanceof (globalThis as unknown as { Float16Array: typeof Float32Array }).Float16Array);
    for (let i = 0; i < x.length; i++) {
      const same = float
        ? (strict ? Object.is(x[i], y[i]) : x[i] === y[i] || (x[i] !== x[i] && y[i] !== y[i]))
        : x[i] === y[i];
      if (!same) return `${path}[${i}]: ${fmt(x[i], 0, new Set())} !== ${fmt(y[i], 0, new Set())}`;
    }
    // Own enumerable non-index keys are compared below only when present.
    const ka = Object.keys(a).filter((k) => !/^\d+$/.test(k));
    const kb = Object.keys(b).filter((k) => !/^\d+$/.test(k));
    if (ka.length === 0 && kb.length === 0) return null;
  } else if (a instanceof Map) {
    const d = cmpMaps(a, b as Map<unknown, unknown>, strict, where, memo);
    if (d) return d;
  } else if (a instanceof Set) {
    const d = cmpSets(a, b as Set<unknown>, strict, where, memo);
    if (d) return d;
  } else if (Array.isArray(a)) {
    const y = b as unknown[];
    if (a.length !== y.length) return `${where}: length ${a.length} !== ${y.length}`;
    for (let i = 0; i < a.length; i++) {
      const ha = i in a, hb = i in y;
      if (ha !== hb && strict) return `${path}[${i}]: hole vs value`;
      const d = cmp(a[i], y[i], strict, `${path}[${i}]`, memo);
      if (d) return d;
    }
    const ka = ownKeys(a, strict).filter((k) => typeof k !== "string" || !/^\d+$/.test(k));
    const kb = ownKeys(y, strict).filter((k) => typeof k !== "string" || !/^\d+$/.test(k));
    return cmpKeys(a, y, ka, kb, strict, path, memo);
  } else if (a instanceof WeakMap || a instanceof WeakSet || a instanceof Promise) {
    if (strict) return `${where}: ${tag(a)} instances are only equal to themselves`;
  }
  return cmpKeys(a, b, ownKeys(a, strict), ownKeys(b, strict), strict, path, memo);
}

function isBoxed(o: object): boolean {
  return o instanceof Number || o instanceof String || o instanceof Boolean || o instanceof BigInt ||
    o instanceof Symbol;
}

function cmpBytes(x: Uint8Array, y: Uint8Array, where: string): Diff {
  if (x.length !== y.length) return `${where}: byteLength ${x.length} !== ${y.length}`;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return `${where} byte ${i}: ${x[i]} !== ${y[i]}`;
  return null;
}

function cmpKeys(
  a: object,
  b: object,
  ka: (string | symbol)[],
  kb: (string | symbol)[],
  strict: boolean,
  path: string,
  memo: [unknown, unknown][],
): Diff {
  const where = path || "value";
  if (ka.length !== kb.length) {
    const sa = new Set(ka), sb = new Set(kb);
    const onlyA = ka.filter((k) => !sb.has(k)).map(fmtKey);
    const onlyB = kb.filter((k) => !sa.has(k)).map(fmtKey);
    return `${where}: keys differ (only in actual: ${onlyA.join(", ") || "-"}; only in expected: ${
      onlyB.join(", ") || "-"
    })`;
  }
  const rb = b as Record<string | symbol, unknown>, ra = a as Record<string | symbol, unknown>;
  for (const k of ka) {
    if (!Object.prototype.propertyIsEnumerable.call(b, k)) {
      return `${where}: key ${fmtKey(k)} missing in expected`;
    }
    const d = cmp(ra[k], rb[k], strict, path + pathKey(k), memo);
    if (d) return d;
  }
  return null;
}

function isPrimitiveKey(k: unknown): boolean {
  return k === null || (typeof k !== "object" && typeof k !== "function");
}

function cmpSets(
  a: Set<unknown>,
  b: Set<unknown>,
  strict: boolean,
  where: string,
  memo: [unknown, unknown][],
): Diff {
  if (a.size !== b.size) return `${where}: Set size ${a.size} !== ${b.size}`;
  const pending: unknown[] = [];
  for (const x of a) {
    if (isPrimitiveKey(x)) {
      if (!b.has(x) && (strict || ![...b].some((y) => isPrimitiveKey(y) && primitiveEqual(x, y, false)))) {
        return `${where}: Set value ${fmt(x, 1, new Set())} missing in expected`;
      }
    } else if (!b.has(x)) pending.push(x);
  }
  if (pending.length) {
    const candidates = [...b].filter((y) => !isPrimitiveKey(y) && !a.has(y));
    for (const x of pending) {
      const i = candidates.findIndex((y) => cmp(x, y, strict, "", memo) === null);
      if (i < 0) return `${where}: Set value ${fmt(x, 1, new Set())} has no deep-equal match in expected`;
      candidates.splice(i, 1);
    }
  }
  return null;
}

function cmpMaps(
  a: Map<unknown, unknown>,
  b: Map<unknown, unknown>,
  strict: boolean,
  where: string,
  memo: [unknown, unknown][],
): Diff {
  if (a.size !== b.size) return `${where}: Map size ${a.size} !== ${b.size}`;
  const pending: [unknown, unknown][] = [];
  for (const [k, v] of a) {
    if (b.has(k)) {
      const d = cmp(v, b.get(k), strict, `${where}.get(${fmt(k, 0, new Set())})`, memo);
      if (d) return d;
    } else if (isPrimitiveKey(k) && strict) {
      return `${where}: Map key ${fmt(k, 1, new Set())} missing in expected`;
    } else pending.push([k, v]);
  }
  if (pending.length) {
    const candidates = [...b].filter(([k]) => !a.has(k));
    for (const [k, v] of pending) {
      const i = candidates.findIndex(([k2, v2]) =>
        (isPrimitiveKey(k) ? primitiveEqual(k, k2, strict) : cmp(k, k2, strict, "", memo) === null) &&
        cmp(v, v2, strict, "", memo) === null
      );
      if (i < 0) return `${where}: Map entry ${fmt(k, 1, new Set())} has no deep-equal match in expected`;
      candidates.splice(i, 1);
    }
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
      arguments.length === 0
        ? "No value argument passed to `assert.ok()`"
        : `The expression evaluated to a falsy value:\n\n  assert.ok(${inspect(value)})\n`,
      value,
      true,
      "==",
    );
  }
}

/** Strict equality with `Object.is`. */
export function strictEqual<T>(actual: unknown, expected: T, message?: Message): asserts actual is T {
  if (!Object.is(actual, expected)) {
    raise(
      message,
      `Expected values to be strictly equal:\n\n${show(actual, expected, "!==")}\n`,
      actual,
      expected,
      "strictEqual",
    );
  }
}

/** Fails when `Object.is(actual, expected)`. */
export function notStrictEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (Object.is(actual, expected)) {
    raise(
      message,
      `Expected "actual" to be strictly unequal to: ${inspect(expected)}`,
      actual,
      expected,
      "notStrictEqual",
    );
  }
}

/** Deep equality in node's strict mode. */
export function deepStrictEqual<T>(actual: unknown, expected: T, message?: Message): asserts actual is T {
  const d = compare(actual, expected, true);
  if (d !== null) {
    raise(
      message,
      `Expected values to be strictly deep-equal:\n${
        show(actual, expected, "!==")
      }\n\nfirst difference: ${d}\n`,
      actual,
      expected,
      "deepStrictEqual",
    );
  }
}

/** Fails when the values are deep-equal in strict mode. */
export function notDeepStrictEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (compare(actual, expected, true) === null) {
    raise(
      message,
      `Expected "actual" not to be strictly deep-equal to: ${inspect(expected)}`,
      actual,
      expected,
      "notDeepStrictEqual",
    );
  }
}

/** Legacy (loose) equality: `==`, NaN equal to NaN. */
export function looseEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (!primitiveEqual(actual, expected, false) && !(actual === expected)) {
    raise(message, `${inspect(actual)} == ${inspect(expected)}`, actual, expected, "==");
  }
}

/** Legacy (loose) inequality. */
export function looseNotEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (primitiveEqual(actual, expected, false)) {
    raise(message, `${inspect(actual)} != ${inspect(expected)}`, actual, expected, "!=");
  }
}

/** Legacy (loose) deep equality: no prototype checks, primitives compared with `==`. */
export function looseDeepEqual(actual: unknown, expected: unknown, message?: Message): void {
  const d = compare(actual, expected, false);
  if (d !== null) {
    raise(
      message,
      `Expected values to be loosely deep-equal:\n${
        show(actual, expected, "!=")
      }\n\nfirst difference: ${d}\n`,
      actual,
      expected,
      "deepEqual",
    );
  }
}

/** Legacy (loose) deep inequality. */
export function looseNotDeepEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (compare(actual, expected, false) === null) {
    raise(
      message,
      `Expected "actual" not to be loosely deep-equal to: ${inspect(expected)}`,
      actual,
      expected,
      "notDeepEqual",
    );
  }
}

/** Throws an AssertionError (or `message` itself when it is an Error). */
export function fail(message?: Message): never {
  if (message instanceof Error) throw message;
  throw new AssertionError({ message: message ?? "Failed", operator: "fail" });
}

/** Throws `value` when it is neither null nor undefined. */
export function ifError(value: unknown): void {
  if (value !== null && value !== undefined) {
    if (value instanceof Error) throw value;
    throw new AssertionError({
      message: `ifError got unwanted exception: ${inspect(value)}`,
      actual: value,
      operator: "ifError",
    });
  }
}

/** Fails unless `string` matches `regexp`. */
export function match(string: string, regexp: RegExp, message?: Message): void {
  if (typeof string !== "string" || !regexp.test(string)) {
    raise(
      message,
      typeof string !== "string"
        ? `The "string" argument must be of type string. Received ${inspect(string)}`
        : `The input did not match the regular expression ${regexp}. Input:\n\n${inspect(string)}\n`,
      string,
      regexp,
      "match",
    );
  }
}

/** Fails when `string` matches `regexp`. */
export function doesNotMatch(string: string, regexp: RegExp, message?: Message): void {
  if (typeof string !== "string" || regexp.test(string)) {
    raise(
      message,
      typeof string !== "string"
        ? `The "string" argument must be of type string. Received ${inspect(string)}`
        : `The input was expected to not match the regular expression ${regexp}. Input:\n\n${
          inspect(string)
        }\n`,
      string,
      regexp,
      "doesNotMatch",
    );
  }
}

/** What `throws`/`rejects` accept as the expected error. */
export type ErrorMatcher =
  | RegExp
  | (new (...args: never[]) => unknown)
  | ((err: unknown) => boolean)
  | Record<string, unknown>
  | Error;

const NO_ERROR = Symbol("no error");

function describeMatcher(expected: unknown): string {
  if (typeof expected === "function" && expected.name) return ` (${expected.name})`;
  return "";
}

function checkError(err: unknown, expected: unknown, message: Message, fnName: string): void {
  if (expected === undefined) return;
  if (expected instanceof RegExp) {
    const str = String(err);
    if (expected.test(str)) return;
    raise(
      message,
      `The input did not match the regular expression ${expected}. Input:\n\n${inspect(str)}\n`,
      err,
      expected,
      fnName,
    );
  }
  if (typeof expected === "function") {
    const proto = (expected as { prototype?: unknown }).prototype;
    if (proto !== undefined && err instanceof (expected as new () => unknown)) return;
    if (Object.prototype.isPrototypeOf.call(Error, expected) || expected === Error) {
      const received = err instanceof Error ? err.constructor.name : inspect(err);
      raise(
        message,
        `The error is expected to be an instance of "${expected.name}". Received "${received}"\n\nError message:\n\n${
          err instanceof Error ? err.message : inspect(err)
        }`,
        err,
        expected,
        fnName,
      );
    }
    const res = (expected as (e: unknown) => unknown).call({}, err);
    if (res !== true) {
      raise(
        message,
        `The ${
          expected.name ? `"${expected.name}" ` : ""
        }validation function is expected to return "true". Received ${inspect(res)}\n\nCaught error:\n\n${
          err instanceof Error ? `${err.name}: ${err.message}` : inspect(err)
        }`,
        err,
        expected,
        fnName,
      );
    }
    return;
  }
  if (typeof expected === "object" && expected !== null) {
    if (err === null || typeof err !== "object") {
      raise(
        message,
        `The error is expected to be an object. Received ${inspect(err)}`,
        err,
        expected,
        fnName,
      );
    }
    const keys = Object.keys(expected);
    if (expected instanceof Error) keys.push("name", "message");
    for (const k of keys) {
      const want = (expected as Record<string, unknown>)[k];
      const got = (err as Record<string, unknown>)[k];
      if (want instanceof RegExp && typeof got === "string") {
        if (!want.test(got)) {
          raise(message, `error.${k}: ${inspect(got)} does not match ${want}`, err, expected, fnName);
        }
        continue;
      }
      const d = compare(got, want, true);
      if (d !== null) {
        raise(
          message,
          `Expected values to be strictly deep-equal:\nerror.${k}: ${
            show(got, want, "!==")
          }\n\nfirst difference: ${d}`,
          err,
          expected,
          fnName,
        );
      }
    }
    return;
  }
  throw new TypeError(
    `The "expected" argument must be a RegExp, class, function or object. Received ${inspect(expected)}`,
  );
}

function splitArgs(expected: unknown, message: Message): [unknown, Message] {
  if (typeof expected === "string") return [undefined, expected];
  return [expected, message];
}

/** Fails unless `fn` throws an error matching `expected`. */
export function throws(fn: () => unknown, expected?: ErrorMatcher | string, message?: Message): void {
  const [exp, msg] = splitArgs(expected, message);
  let err: unknown = NO_ERROR;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (err === NO_ERROR) {
    raise(
      msg,
      `Missing expected exception${describeMatcher(exp)}${typeof msg === "string" ? `: ${msg}` : "."}`,
      undefined,
      exp,
      "throws",
    );
  }
  checkError(err, exp, msg, "throws");
}

/** Fails when `fn` throws (matching `expected`, when given). */
export function doesNotThrow(fn: () => unknown, expected?: ErrorMatcher | string, message?: Message): void {
  const [exp, msg] = splitArgs(expected, message);
  try {
    fn();
  } catch (e) {
    if (exp !== undefined && typeof exp === "function" && !(e instanceof (exp as new () => unknown))) throw e;
    raise(
      msg,
      `Got unwanted exception.\nActual message: "${e instanceof Error ? e.message : inspect(e)}"`,
      e,
      exp,
      "doesNotThrow",
    );
  }
}

async function settle(block: Promise<unknown> | (() => Promise<unknown>)): Promise<unknown> {
  let p: unknown = block;
  if (typeof block === "function") {
    p = block();
    if (!p || typeof (p as { then?: unknown }).then !== "function") {
      throw new TypeError(`The "promiseFn" argument must return a Promise. Received ${inspect(p)}`);
    }
  }
  try {
    await p;
  } catch (e) {
    return e;
  }
  return NO_ERROR;
}

/** Fails unless the promise (or the promise returned by the function) rejects matching `expected`. */
export async function rejects(
  block: Promise<unknown> | (() => Promise<unknown>),
  expected?: ErrorMatcher | string,
  message?: Message,
): Promise<void> {
  const [exp, msg] = splitArgs(expected, message);
  const err = await settle(block);
  if (err === NO_ERROR) {
    raise(
      msg,
      `Missing expected rejection${describeMatcher(exp)}${typeof msg === "string" ? `: ${msg}` : "."}`,
      undefined,
      exp,
      "rejects",
    );
  }
  checkError(err, exp, msg, "rejects");
}

/** Fails when the promise (or the promise returned by the function) rejects. */
export async function doesNotReject(
  block: Promise<unknown> | (() => Promise<unknown>),
  expected?: ErrorMatcher | string,
  message?: Message,
): Promise<void> {
  const [exp, msg] = splitArgs(expected, message);
  const err = await settle(block);
  if (err !== NO_ERROR) {
    raise(
      msg,
      `Got unwanted rejection.\nActual message: "${err instanceof Error ? err.message : inspect(err)}"`,
      err,
      exp,
      "doesNotReject",
    );
  }
}

/** The strict assertion API (default export of `node:assert/strict`). */
export interface StrictAssert {
  (value: unknown, message?: Message): asserts value;
  ok: typeof ok;
  equal: typeof strictEqual;
  notEqual: typeof notStrictEqual;
  strictEqual: typeof strictEqual;
  notStrictEqual: typeof notStrictEqual;
  deepEqual: typeof deepStrictEqual;
  deepStrictEqual: typeof deepStrictEqual;
  notDeepEqual: typeof notDeepStrictEqual;
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
  strict: StrictAssert;
}

const strictFn = ((value: unknown, message?: Message): void => {
  if (!value) {
    raise(
      message,
      `The expression evaluated to a falsy value:\n\n  assert(${inspect(value)})\n`,
      value,
      true,
      "==",
    );
  }
}) as StrictAssert;
Object.assign(strictFn, {
  ok,
  equal: strictEqual,
  notEqual: notStrictEqual,
  strictEqual,
  notStrictEqual,
  deepEqual: deepStrictEqual,
  deepStrictEqual,
  notDeepEqual: notDeepStrictEqual,
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
});
strictFn.strict = strictFn;

/** `node:assert/strict`'s default export. */
export const strict: StrictAssert = strictFn;
export default strictFn;

export {
  deepStrictEqual as deepEqual,
  notDeepStrictEqual as notDeepEqual,
  notStrictEqual as notEqual,
  strictEqual as equal,
};
