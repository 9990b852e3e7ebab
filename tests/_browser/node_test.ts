// deno-lint-ignore-file no-explicit-any
/**
 * Browser stand-in for `node:test`, used by `scripts/test.mjs` for the Chromium run.
 *
 * Provides describe/suite/it/test (with `.skip`, `.todo`, `.only` and the `skip`, `todo`, `only`,
 * `timeout` options), before/after/beforeEach/afterEach hooks (also on the test context), the
 * test context (`t.test`, `t.skip()`, `t.todo()`, `t.diagnostic()`, `t.signal`, `t.name`,
 * `t.mock`, `t.assert`, `t.after`…), callback-style tests `(t, done)` and `mock.fn`/`mock.method`.
 *
 * Counting matches what the runner reports for Deno and Bun: one result per `it`/`test`
 * callback. Subtests made with `t.test` are folded into their parent (a failing subtest fails
 * the parent, naming the subtest), as Bun reports them. `describe` blocks are not results.
 * `only` is honoured as Deno does: when any test or suite is marked `only`, the others are
 * skipped. Failures in `before` hooks fail every test of the suite; failures in `after` hooks,
 * in a `describe` callback and uncaught errors outside any test are reported as extra failures.
 * An uncaught error or unhandled rejection while a test runs fails that test.
 *
 * The runner imports the bundled test module, then calls `globalThis.__latticeTest.done()`,
 * which runs what is still queued and resolves to the results. Tests registered at the top
 * level start on the next macrotask, so `await test(...)` at module level works.
 *
 * Not a test file: it must never match `*.test.ts`.
 *
 * @module
 */

import { inspect, strict as strictAssert } from "./assert.ts";

/** Options of `test`/`it`/`describe` (the subset node honours that matters in a browser). */
export interface TestOptions {
  skip?: boolean | string;
  todo?: boolean | string;
  only?: boolean;
  timeout?: number;
  concurrency?: number | boolean;
  signal?: AbortSignal;
  plan?: number;
}

/** One reported result. */
export interface TestResult {
  name: string;
  status: "pass" | "fail" | "skip" | "todo";
  error?: string;
  ms: number;
}

/** What `done()` resolves to. */
export interface Report {
  results: TestResult[];
  diagnostics: string[];
  onlyUsed: boolean;
}

type Done = (err?: unknown) => void;
type TestFn = (t: TestContext, done: Done) => unknown;
type HookFn = (t: any, done: Done) => unknown;
type SuiteFn = (s: SuiteContext) => unknown;

interface Hooks {
  before: HookFn[];
  after: HookFn[];
  beforeEach: HookFn[];
  afterEach: HookFn[];
}

function newHooks(): Hooks {
  return { before: [], after: [], beforeEach: [], afterEach: [] };
}

class Suite {
  children: (Suite | Case)[] = [];
  hooks: Hooks = newHooks();
  build: Promise<unknown> | null = null;
  buildError: unknown = undefined;
  constructor(readonly name: string, readonly parent: Suite | null, readonly opts: TestOptions) {}
  get path(): string[] {
    return this.parent ? [...this.parent.path, this.name] : [];
  }
}

class Case {
  settle!: () => void;
  readonly finished: Promise<void> = new Promise<void>((r) => (this.settle = r));
  constructor(
    readonly name: string,
    readonly parent: Suite,
    readonly fn: TestFn | undefined,
    readonly opts: TestOptions,
  ) {}
}

/** Context handed to `describe` callbacks. */
export interface SuiteContext {
  name: string;
  signal: AbortSignal;
}

// ---------------------------------------------------------------------------------------------
// global state
// ---------------------------------------------------------------------------------------------

const root = new Suite("", null, {});
let collecting: Suite = root;
let onlyUsed = false;
let rootIndex = 0;
let rootBeforeDone = false;
let rootBeforeError: unknown = undefined;
let pumping: Promise<void> | null = null;
let scheduled = false;
let current: TestContext | null = null;
const results: TestResult[] = [];
const diagnostics: string[] = [];
const stray: unknown[] = [];

interface Config {
  timeout?: number;
}

function config(): Config {
  return ((globalThis as any).__LATTICE_TEST_CONFIG__ ?? {}) as Config;
}

function now(): number {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return !!x && (typeof x === "object" || typeof x === "function") && typeof (x as any).then === "function";
}

const SUBTEST_FAILURE = "SubtestFailure";

/**
 * Formats a thrown value: message (with node-style assertion diff) plus stack frames. The runner
 * maps bundle positions back to source files and drops the frames of these shims.
 */
export function formatError(e: unknown): string {
  if (e instanceof Error) {
    if (e.name === SUBTEST_FAILURE) return e.message;
    let head = `${e.name}: ${e.message}`;
    const ae = e as Error & {
      generatedMessage?: boolean;
      actual?: unknown;
      expected?: unknown;
      operator?: string;
    };
    if (
      e.name === "AssertionError" && ae.generatedMessage === false && ae.operator && ae.operator !== "fail"
    ) {
      head += `\n  actual:   ${inspect(ae.actual)}\n  expected: ${
        inspect(ae.expected)
      }\n  operator: ${ae.operator}`;
    }
    const frames = String(e.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l)).slice(0, 12);
    let s = frames.length ? `${head}\n${frames.join("\n")}` : head;
    if (e.cause !== undefined) s += `\ncaused by: ${formatError(e.cause)}`;
    return s;
  }
  return `non-error thrown: ${inspect(e)}`;
}

function parseArgs<F>(args: unknown[]): { name: string; opts: TestOptions; fn: F | undefined } {
  let name: string | undefined;
  let opts: TestOptions = {};
  let fn: F | undefined;
  for (const a of args) {
    if (typeof a === "string") name = a;
    else if (typeof a === "function") fn = a as F;
    else if (a && typeof a === "object") opts = a as TestOptions;
  }
  const fnName = fn ? (fn as { name?: string }).name : undefined;
  return { name: name ?? (fnName || "<anonymous>"), opts, fn };
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    void kick();
  }, 0);
}

function kick(): Promise<void> {
  if (!pumping) {
    pumping = pumpRoot().finally(() => {
      pumping = null;
    });
  }
  return pumping;
}

// ---------------------------------------------------------------------------------------------
// uncaught errors
// ---------------------------------------------------------------------------------------------

function onUncaught(err: unknown): void {
  if (current) current.uncaught ??= err;
  else stray.push(err);
}

{
  const g = globalThis as any;
  if (typeof g.addEventListener === "function") {
    g.addEventListener("error", (ev: any) => {
      onUncaught(ev?.error ?? new Error(String(ev?.message ?? "uncaught error")));
      ev?.preventDefault?.();
    });
    g.addEventListener("unhandledrejection", (ev: any) => {
      onUncaught(ev?.reason);
      ev?.preventDefault?.();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// mocks
// ---------------------------------------------------------------------------------------------

/** One recorded call of a mock function. */
export interface MockCall {
  arguments: unknown[];
  result?: unknown;
  error?: unknown;
  this: unknown;
  target?: unknown;
}

/** `fn.mock` of a mock function. */
export class MockFunctionContext {
  calls: MockCall[] = [];
  #impl: ((...args: any[]) => any) | undefined;
  #once = new Map<number, (...args: any[]) => any>();
  #restore: () => void;
  constructor(impl: ((...args: any[]) => any) | undefined, restore: () => void) {
    this.#impl = impl;
    this.#restore = restore;
  }
  callCount(): number {
    return this.calls.length;
  }
  resetCalls(): void {
    this.calls = [];
  }
  mockImplementation(fn: (...args: any[]) => any): void {
    this.#impl = fn;
  }
  mockImplementationOnce(fn: (...args: any[]) => any, onCall?: number): void {
    this.#once.set(onCall ?? this.calls.length, fn);
  }
  restore(): void {
    this.#restore();
  }
  /** @internal */
  pick(): ((...args: any[]) => any) | undefined {
    const n = this.calls.length;
    const once = this.#once.get(n);
    if (once) {
      this.#once.delete(n);
      return once;
    }
    return this.#impl;
  }
}

/** `mock` / `t.mock`. */
export class MockTracker {
  #mocks: MockFunctionContext[] = [];

  fn(original?: unknown, implementation?: unknown, _options?: unknown): any {
    const orig = typeof original === "function" ? original as (...args: any[]) => any : undefined;
    const impl = typeof implementation === "function" ? implementation as (...args: any[]) => any : orig;
    return this.#wrap(impl, () => {});
  }

  method(object: any, methodName: string | symbol, implementation?: unknown, _options?: unknown): any {
    const original = object[methodName];
    if (typeof original !== "function") throw new TypeError(`${String(methodName)} is not a method`);
    const impl = typeof implementation === "function" ? implementation as (...args: any[]) => any : original;
    const had = Object.prototype.hasOwnProperty.call(object, methodName);
    const wrapped = this.#wrap(impl, () => {
      if (had) object[methodName] = original;
      else delete object[methodName];
    });
    object[methodName] = wrapped;
    return wrapped;
  }

  #wrap(impl: ((...args: any[]) => any) | undefined, restore: () => void): any {
    const ctx = new MockFunctionContext(impl, restore);
    this.#mocks.push(ctx);
    const wrapped = function (this: unknown, ...args: unknown[]): unknown {
      const f = ctx.pick();
      const call: MockCall = { arguments: args, this: this };
      ctx.calls.push(call);
      try {
        const r = new.target
          ? Reflect.construct(f ?? function () {}, args, new.target)
          : f?.apply(this, args);
        call.result = r;
        if (new.target) call.target = new.target;
        return r;
      } catch (e) {
        call.error = e;
        throw e;
      }
    };
    Object.defineProperty(wrapped, "mock", { value: ctx, enumerable: false });
    return wrapped;
  }

  restoreAll(): void {
    for (const m of this.#mocks) m.restore();
  }

  reset(): void {
    this.restoreAll();
    this.#mocks = [];
  }
}

/** The module-level mock tracker (`import { mock } from "node:test"`). */
export const mock: MockTracker = new MockTracker();

// ---------------------------------------------------------------------------------------------
// test context
// ---------------------------------------------------------------------------------------------

/** The `t` handed to test functions. */
export class TestContext {
  readonly name: string;
  readonly fullName: string;
  readonly mock: MockTracker = new MockTracker();
  readonly assert: typeof strictAssert = strictAssert;
  uncaught: unknown = undefined;
  skipped: string | boolean = false;
  todoed: string | boolean = false;
  readonly #controller = new AbortController();
  #queue: Promise<void> = Promise.resolve();
  #subFailures: string[] = [];
  #hooks: Hooks = newHooks();
  #parentHooks: Hooks[];

  constructor(name: string, fullName: string, parentHooks: Hooks[] = []) {
    this.name = name;
    this.fullName = fullName;
    this.#parentHooks = parentHooks;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    this.#controller.abort(reason);
  }

  diagnostic(message: string): void {
    diagnostics.push(`${this.fullName}: ${message}`);
  }

  skip(message?: string): void {
    this.skipped = message ?? true;
  }

  todo(message?: string): void {
    this.todoed = message ?? true;
  }

  plan(_count: number): void {}

  runOnly(_shouldRunOnlyTests: boolean): void {}

  before(fn: HookFn): void {
    this.#hooks.before.push(fn);
  }
  after(fn: HookFn): void {
    this.#hooks.after.push(fn);
  }
  beforeEach(fn: HookFn): void {
    this.#hooks.beforeEach.push(fn);
  }
  afterEach(fn: HookFn): void {
    this.#hooks.afterEach.push(fn);
  }

  /** Subtest: runs after the previously started subtests; its failure fails this test. */
  test(...args: unknown[]): Promise<void> {
    const { name, opts, fn } = parseArgs<TestFn>(args);
    const run = async () => {
      if (opts.skip || opts.todo || !fn) return;
      const sub = new TestContext(name, `${this.fullName} > ${name}`, [...this.#parentHooks, this.#hooks]);
      const err = await runBody(sub, fn, opts, [...this.#parentHooks, this.#hooks]);
      if (err !== undefined) this.#subFailures.push(`subtest "${name}" failed: ${formatError(err)}`);
    };
    const p = this.#queue.then(async () => {
      if (this.#hooks.before.length) {
        const hooks = this.#hooks.before.splice(0);
        for (const h of hooks) await callHook(h, this);
      }
      await run();
    });
    this.#queue = p.catch((e) => {
      this.#subFailures.push(`subtest "${name}" hook failed: ${formatError(e)}`);
    });
    return this.#queue;
  }

  /** @internal waits for the subtests and runs `t.after` hooks; returns the first failure. */
  async finish(): Promise<unknown> {
    await this.#queue;
    let err: unknown = undefined;
    for (const h of this.#hooks.after) {
      try {
        await callHook(h, this);
      } catch (e) {
        err ??= e;
      }
    }
    if (err === undefined && this.#subFailures.length) {
      err = new Error(this.#subFailures.join("\n"));
      (err as Error).name = SUBTEST_FAILURE;
    }
    return err;
  }
}

function invoke(fn: (t: any, done: Done) => unknown, ctx: unknown): Promise<unknown> {
  if (fn.length >= 2) {
    return new Promise((resolve, reject) => {
      const done: Done = (err) => (err ? reject(err) : resolve(undefined));
      try {
        const r = fn(ctx, done);
        if (isThenable(r)) r.then(undefined, reject);
      } catch (e) {
        reject(e);
      }
    });
  }
  try {
    return Promise.resolve(fn(ctx, () => {}));
  } catch (e) {
    return Promise.reject(e);
  }
}

function callHook(fn: HookFn, ctx: unknown): Promise<unknown> {
  return withTimeout(invoke(fn, ctx), config().timeout, "hook");
}

function withTimeout<T>(
  p: Promise<T>,
  ms: number | undefined,
  what: string,
  onTimeout?: () => void,
): Promise<T> {
  if (!ms || !Number.isFinite(ms) || ms <= 0) return p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`${what} timed out after ${ms} ms`));
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Runs beforeEach hooks, the body, subtests, afterEach hooks and `t.after`;
 * returns the first error (or undefined).
 */
async function runBody(
  ctx: TestContext,
  fn: TestFn,
  opts: TestOptions,
  hookChain: Hooks[],
): Promise<unknown> {
  const prev = current;
  current = ctx;
  let err: unknown = undefined;
  try {
    try {
      for (const hooks of hookChain) for (const h of hooks.beforeEach) await callHook(h, ctx);
      const timeout = opts.timeout ?? config().timeout;
      await withTimeout(
        (async () => {
          await invoke(fn, ctx);
          const e = await ctx.finish();
          if (e !== undefined) throw e;
        })(),
        timeout,
        "test",
        () => ctx.abort(new Error("test timed out")),
      );
    } catch (e) {
      err = e;
    }
    for (let i = hookChain.length - 1; i >= 0; i--) {
      for (const h of hookChain[i].afterEach) {
        try {
          await callHook(h, ctx);
        } catch (e) {
          err ??= e;
        }
      }
    }
    // Let a rejection left dangling by the body surface before deciding.
    await new Promise((r) => setTimeout(r, 0));
    if (err === undefined && ctx.uncaught !== undefined) err = ctx.uncaught;
  } finally {
    ctx.mock.restoreAll();
    current = prev;
  }
  return err;
}

// ---------------------------------------------------------------------------------------------
// running suites
// ---------------------------------------------------------------------------------------------

interface Inherited {
  skip: string | null;
  beforeError: unknown;
}

function reason(v: boolean | string | undefined, fallback: string): string | null {
  if (!v) return null;
  return typeof v === "string" ? v : fallback;
}

function selected(c: Case): boolean {
  if (!onlyUsed || c.opts.only) return true;
  for (let s: Suite | null = c.parent; s; s = s.parent) if (s.opts.only) return true;
  return false;
}

function hookChainOf(s: Suite): Hooks[] {
  const chain: Hooks[] = [];
  for (let x: Suite | null = s; x; x = x.parent) chain.unshift(x.hooks);
  return chain;
}

function fullName(c: Case): string {
  return [...c.parent.path, c.name].join(" > ");
}

function suiteName(s: Suite): string {
  return s.path.join(" > ") || "(top level)";
}

function wouldRun(s: Suite): boolean {
  for (const ch of s.children) {
    if (ch instanceof Suite) {
      if (!ch.opts.skip && !ch.opts.todo && wouldRun(ch)) return true;
    } else if (!ch.opts.skip && !ch.opts.todo && selected(ch)) return true;
  }
  return false;
}

async function runCase(c: Case, inh: Inherited): Promise<void> {
  const name = fullName(c);
  try {
    const skip = inh.skip ?? reason(c.opts.skip, "skipped");
    if (skip !== null) {
      results.push({ name, status: "skip", ms: 0 });
      return;
    }
    if (c.opts.todo) {
      results.push({ name, status: "todo", ms: 0 });
      return;
    }
    if (!selected(c)) {
      results.push({ name, status: "skip", ms: 0 });
      return;
    }
    if (inh.beforeError !== undefined) {
      results.push({
        name,
        status: "fail",
        error: `before hook failed: ${formatError(inh.beforeError)}`,
        ms: 0,
      });
      return;
    }
    if (!c.fn) {
      results.push({ name, status: "pass", ms: 0 });
      return;
    }
    const start = now();
    const ctx = new TestContext(c.name, name);
    const err = await runBody(ctx, c.fn, c.opts, hookChainOf(c.parent));
    const ms = now() - start;
    if (ctx.todoed) results.push({ name, status: "todo", ms, error: err ? formatError(err) : undefined });
    else if (err !== undefined) results.push({ name, status: "fail", error: formatError(err), ms });
    else if (ctx.skipped) results.push({ name, status: "skip", ms });
    else results.push({ name, status: "pass", ms });
  } finally {
    c.settle();
  }
}

async function runHooks(list: HookFn[], s: Suite): Promise<unknown> {
  const ctx: SuiteContext = { name: s.name, signal: new AbortController().signal };
  for (const h of list) {
    try {
      await callHook(h, ctx);
    } catch (e) {
      return e;
    }
  }
  return undefined;
}

async function runChild(ch: Suite | Case, inh: Inherited): Promise<void> {
  if (ch instanceof Suite) await runSuite(ch, inh);
  else await runCase(ch, inh);
}

async function runSuite(s: Suite, inh: Inherited): Promise<void> {
  if (s.build) {
    try {
      await s.build;
    } catch (e) {
      s.buildError ??= e;
    }
  }
  if (s.buildError !== undefined) {
    results.push({
      name: `${suiteName(s)} (describe callback)`,
      status: "fail",
      error: formatError(s.buildError),
      ms: 0,
    });
  }
  const skip = inh.skip ?? reason(s.opts.skip, "skipped") ?? reason(s.opts.todo, "todo");
  const active = skip === null && inh.beforeError === undefined && wouldRun(s);
  let beforeError = inh.beforeError;
  if (active) beforeError = await runHooks(s.hooks.before, s);
  for (let i = 0; i < s.children.length; i++) await runChild(s.children[i], { skip, beforeError });
  if (active) {
    const e = await runHooks(s.hooks.after, s);
    if (e !== undefined) {
      results.push({ name: `${suiteName(s)} (after hook)`, status: "fail", error: formatError(e), ms: 0 });
    }
  }
}

async function pumpRoot(): Promise<void> {
  if (!rootBeforeDone && rootIndex < root.children.length) {
    rootBeforeDone = true;
    if (wouldRun(root)) rootBeforeError = await runHooks(root.hooks.before, root);
  }
  while (rootIndex < root.children.length) {
    const ch = root.children[rootIndex++];
    await runChild(ch, { skip: null, beforeError: rootBeforeError });
  }
}

/** Runs everything still queued, the top-level `after` hooks, and returns the report. */
async function done(): Promise<Report> {
  while (pumping || rootIndex < root.children.length) await kick();
  if (rootBeforeDone && rootBeforeError === undefined) {
    const e = await runHooks(root.hooks.after, root);
    if (e !== undefined) {
      results.push({ name: "(top level) (after hook)", status: "fail", error: formatError(e), ms: 0 });
    }
  }
  await new Promise((r) => setTimeout(r, 0));
  for (const e of stray.splice(0)) {
    results.push({ name: "(uncaught error outside any test)", status: "fail", error: formatError(e), ms: 0 });
  }
  return { results: results.slice(), diagnostics: diagnostics.slice(), onlyUsed };
}

(globalThis as any).__latticeTest = {
  done,
  current: (): string | null => current?.fullName ?? null,
  results: (): TestResult[] => results.slice(),
};

// ---------------------------------------------------------------------------------------------
// registration API
// ---------------------------------------------------------------------------------------------

function registerCase(args: unknown[], extra: TestOptions): Promise<void> {
  const { name, opts, fn } = parseArgs<TestFn>(args);
  const o = { ...opts, ...extra };
  if (o.only) onlyUsed = true;
  const c = new Case(name, collecting, fn, o);
  collecting.children.push(c);
  if (collecting === root) schedule();
  return c.finished;
}

function registerSuite(args: unknown[], extra: TestOptions): Promise<void> {
  const { name, opts, fn } = parseArgs<SuiteFn>(args);
  const o = { ...opts, ...extra };
  if (o.only) onlyUsed = true;
  const s = new Suite(name, collecting, o);
  collecting.children.push(s);
  if (collecting === root) schedule();
  if (fn) {
    const prev = collecting;
    collecting = s;
    try {
      const r = fn({ name, signal: new AbortController().signal });
      if (isThenable(r)) s.build = Promise.resolve(r);
    } catch (e) {
      s.buildError = e;
    } finally {
      collecting = prev;
    }
  }
  return Promise.resolve();
}

interface TestApi {
  (...args: unknown[]): Promise<void>;
  skip: (...args: unknown[]) => Promise<void>;
  todo: (...args: unknown[]) => Promise<void>;
  only: (...args: unknown[]) => Promise<void>;
}

function makeApi(register: (args: unknown[], extra: TestOptions) => Promise<void>): TestApi {
  const api = ((...args: unknown[]) => register(args, {})) as TestApi;
  api.skip = (...args: unknown[]) => register(args, { skip: true });
  api.todo = (...args: unknown[]) => register(args, { todo: true });
  api.only = (...args: unknown[]) => register(args, { only: true });
  return api;
}

/** `test()` / `it()`. */
export const it: TestApi = makeApi(registerCase);
/** `describe()` / `suite()`. */
export const describe: TestApi = makeApi(registerSuite);
export const suite: TestApi = describe;

function hook(kind: keyof Hooks): (fn: HookFn, _options?: unknown) => void {
  return (fn, _options) => {
    collecting.hooks[kind].push(fn);
  };
}

export const before: (fn: HookFn, options?: unknown) => void = hook("before");
export const after: (fn: HookFn, options?: unknown) => void = hook("after");
export const beforeEach: (fn: HookFn, options?: unknown) => void = hook("beforeEach");
export const afterEach: (fn: HookFn, options?: unknown) => void = hook("afterEach");

/** `run()` of node's API is not available in the browser. */
export function run(): never {
  throw new Error("node:test run() is not available in the browser test shim");
}

type FullTest = TestApi & {
  test: FullTest;
  it: TestApi;
  describe: TestApi;
  suite: TestApi;
  before: typeof before;
  after: typeof after;
  beforeEach: typeof beforeEach;
  afterEach: typeof afterEach;
  mock: MockTracker;
  run: typeof run;
};

/** `test()`, also the default export, carrying the rest of the API as properties. */
export const test: FullTest = Object.assign(makeApi(registerCase), {
  it,
  describe,
  suite,
  before,
  after,
  beforeEach,
  afterEach,
  mock,
  run,
}) as FullTest;
test.test = test;

export const skip: (...args: unknown[]) => Promise<void> = test.skip;
export const todo: (...args: unknown[]) => Promise<void> = test.todo;
export const only: (...args: unknown[]) => Promise<void> = test.only;

export default test;
