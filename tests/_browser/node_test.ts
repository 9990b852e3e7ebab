// deno-lint-ignore-file no-explicit-any
/**
 * Browser stand-in for `node:test`, for the Chromium run of the test runner
 * (scripts/test/bundle.mjs aliases the import to this module; scripts/test/page_runner.mjs collects
 * the results through `globalThis.__latticeTest`).
 *
 * Only what the tests use (grep `from "node:test"` in tests/): `describe` and `it` with an optional
 * `{ timeout }`, and the hooks `before`, `after` and `afterEach`. Test functions take no context
 * argument, `describe` callbacks are synchronous, and there is no skip/todo/only: the house rule is
 * no skipped tests, and a test that uses one of them fails to load in Chromium.
 *
 * Counting matches what the runner reports for Deno and Bun: one result per `it` callback;
 * `describe` blocks are not results. A failing `before` hook fails every test of its suite; a
 * failing `after` hook, a throwing `describe` callback and an uncaught error outside any test are
 * extra failures. An uncaught error or unhandled rejection while a test runs fails that test.
 *
 * The runner imports the bundled test module, then calls `globalThis.__latticeTest.done()`, which
 * runs the registered tests in order and resolves to the results.
 *
 * Not a test file: it must never match `*.test.ts`.
 *
 * @module
 */

import { inspect } from "./assert.ts";

/** Options of `it`/`describe` (the one the tests use). */
export interface TestOptions {
  timeout?: number;
}

/** One reported result. */
export interface TestResult {
  name: string;
  status: "pass" | "fail";
  error?: string;
  ms: number;
}

type Fn = () => unknown;

interface Suite {
  name: string;
  parent: Suite | null;
  children: (Suite | Case)[];
  before: Fn[];
  after: Fn[];
  afterEach: Fn[];
  error?: unknown;
}

interface Case {
  name: string;
  fn: Fn;
  timeout?: number;
}

const root: Suite = { name: "", parent: null, children: [], before: [], after: [], afterEach: [] };
let collecting = root;
let current: string | null = null;
let uncaught: unknown = undefined;
const stray: unknown[] = [];
const results: TestResult[] = [];

/** The per-test timeout the runner sets (LATTICE_TEST_TIMEOUT). */
const configuredTimeout = (): number | undefined => (globalThis as any).__LATTICE_TEST_CONFIG__?.timeout;

/**
 * Formats a thrown value: message (with node-style actual/expected for a custom assertion message)
 * plus stack frames. The runner maps bundle positions back to source files and drops shim frames.
 */
export function formatError(e: unknown): string {
  if (!(e instanceof Error)) return `non-error thrown: ${inspect(e)}`;
  let head = `${e.name}: ${e.message}`;
  const ae = e as Error & {
    generatedMessage?: boolean;
    actual?: unknown;
    expected?: unknown;
    operator?: string;
  };
  if (e.name === "AssertionError" && ae.generatedMessage === false && ae.operator !== "fail") {
    head += `\n  actual:   ${inspect(ae.actual)}\n  expected: ${
      inspect(ae.expected)
    }\n  operator: ${ae.operator}`;
  }
  const frames = String(e.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l)).slice(0, 12);
  let s = frames.length ? `${head}\n${frames.join("\n")}` : head;
  if (e.cause !== undefined) s += `\ncaused by: ${formatError(e.cause)}`;
  return s;
}

{
  const onUncaught = (err: unknown) => {
    if (current !== null) uncaught ??= err;
    else stray.push(err);
  };
  globalThis.addEventListener("error", (ev) => {
    onUncaught(ev.error ?? new Error(String(ev.message ?? "uncaught error")));
    ev.preventDefault();
  });
  globalThis.addEventListener("unhandledrejection", (ev) => {
    onUncaught(ev.reason);
    ev.preventDefault();
  });
}

async function withTimeout(fn: Fn, ms: number | undefined, what: string): Promise<void> {
  if (!ms || !Number.isFinite(ms) || ms <= 0) return void await fn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([(async () => await fn())(), limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs hooks in order; the first error, or undefined. */
async function runHooks(hooks: Fn[]): Promise<unknown> {
  for (const h of hooks) {
    try {
      await withTimeout(h, configuredTimeout(), "hook");
    } catch (e) {
      return e;
    }
  }
  return undefined;
}

const pathOf = (s: Suite): string[] => s.parent ? [...pathOf(s.parent), s.name] : [];
const suiteName = (s: Suite): string => pathOf(s).join(" > ") || "(top level)";
const hasCases = (s: Suite): boolean => s.children.some((c) => "fn" in c || hasCases(c));

async function runCase(c: Case, suite: Suite, beforeError: unknown): Promise<void> {
  const name = [...pathOf(suite), c.name].join(" > ");
  if (beforeError !== undefined) {
    results.push({ name, status: "fail", error: `before hook failed: ${formatError(beforeError)}`, ms: 0 });
    return;
  }
  const start = performance.now();
  current = name;
  uncaught = undefined;
  let err: unknown = undefined;
  try {
    await withTimeout(c.fn, c.timeout ?? configuredTimeout(), "test");
  } catch (e) {
    err = e;
  }
  for (let s: Suite | null = suite; s; s = s.parent) {
    const hookError = await runHooks(s.afterEach);
    err ??= hookError;
  }
  // Let a rejection left dangling by the body surface before deciding.
  await new Promise((r) => setTimeout(r, 0));
  err ??= uncaught;
  current = null;
  const ms = performance.now() - start;
  results.push(
    err === undefined ? { name, status: "pass", ms } : { name, status: "fail", error: formatError(err), ms },
  );
}

async function runSuite(s: Suite, inheritedBeforeError: unknown): Promise<void> {
  if (s.error !== undefined) {
    results.push({
      name: `${suiteName(s)} (describe callback)`,
      status: "fail",
      error: formatError(s.error),
      ms: 0,
    });
  }
  const active = inheritedBeforeError === undefined && hasCases(s);
  const beforeError = active ? await runHooks(s.before) : inheritedBeforeError;
  for (const child of s.children) {
    if ("fn" in child) await runCase(child, s, beforeError);
    else await runSuite(child, beforeError);
  }
  if (!active || beforeError !== undefined) return;
  const afterError = await runHooks(s.after);
  if (afterError !== undefined) {
    results.push({
      name: `${suiteName(s)} (after hook)`,
      status: "fail",
      error: formatError(afterError),
      ms: 0,
    });
  }
}

/** Runs the registered tests and returns the report the runner reads. */
async function done(): Promise<{ results: TestResult[] }> {
  await runSuite(root, undefined);
  await new Promise((r) => setTimeout(r, 0));
  for (const e of stray.splice(0)) {
    results.push({ name: "(uncaught error outside any test)", status: "fail", error: formatError(e), ms: 0 });
  }
  return { results: results.slice() };
}

(globalThis as any).__latticeTest = {
  done,
  current: (): string | null => current,
  results: (): TestResult[] => results.slice(),
};

/** The arguments of `it`/`describe`: a name, optional options, the function. */
function parse(args: unknown[]): { name: string; options: TestOptions; fn: Fn } {
  const name = args.find((a) => typeof a === "string") as string | undefined;
  const options = (args.find((a) => a !== null && typeof a === "object") ?? {}) as TestOptions;
  const fn = args.find((a) => typeof a === "function") as Fn | undefined;
  if (!fn) throw new TypeError(`test "${name}" has no function`);
  return { name: name ?? (fn.name || "<anonymous>"), options, fn };
}

/** `it(name, [options], fn)`: registers a test in the current `describe`. */
export function it(...args: unknown[]): void {
  const { name, options, fn } = parse(args);
  collecting.children.push({ name, fn, timeout: options.timeout });
}

/**
 * `describe(name, [options], fn)`: a suite; its callback registers tests and hooks. A suite's
 * `timeout` is not applied (each test has the runner's per-test timeout).
 */
export function describe(...args: unknown[]): void {
  const { name, fn } = parse(args);
  const suite: Suite = { name, parent: collecting, children: [], before: [], after: [], afterEach: [] };
  collecting.children.push(suite);
  const outer = collecting;
  collecting = suite;
  try {
    const r = fn() as any;
    if (r && typeof r.then === "function") throw new TypeError("describe callbacks must be synchronous");
  } catch (e) {
    suite.error = e;
  } finally {
    collecting = outer;
  }
}

/** Runs once before the tests of the current suite. */
export function before(fn: Fn): void {
  collecting.before.push(fn);
}

/** Runs once after the tests of the current suite. */
export function after(fn: Fn): void {
  collecting.after.push(fn);
}

/** Runs after each test of the current suite (and its nested suites). */
export function afterEach(fn: Fn): void {
  collecting.afterEach.push(fn);
}
