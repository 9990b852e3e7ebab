// @server-only: reads package.json and package-lock.json from the checkout
/**
 * scripts/test/lockfile.mjs: the test runner's deps stage accepts a registry that offers more or fewer
 * optional packages for other platforms than the committed lockfile lists, and still fails on a
 * real drift (a changed package.json, a changed version, a package this platform installs).
 * Runs on the committed lockfile itself, so a lockfile that drifts from package.json fails here.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  fitsPlatform,
  isForeignOptional,
  lockDrift,
  manifestDrift,
  onlyMissingOptionals,
} from "../scripts/test/lockfile.mjs";

type Entry = Record<string, unknown>;
type Lock = { packages: Record<string, Entry> };

const root = new URL("../", import.meta.url);
const readJson = (name: string) => JSON.parse(readFileSync(new URL(name, root), "utf8"));
const linux = { os: "linux", arch: "x64", libc: "glibc" };
const clone = <T>(x: T): T => structuredClone(x);

/** A lockfile shaped like npm's for `deno`, with the given platform packages. */
function denoLock(platforms: Record<string, Entry>): Lock {
  const packages: Record<string, Entry> = {
    "": { name: "p", devDependencies: { deno: "2.9.6" } },
    "node_modules/deno": {
      version: "2.9.6",
      dev: true,
      optionalDependencies: Object.fromEntries(Object.keys(platforms).map((k) => [k, "2.9.6"])),
    },
  };
  for (const [name, entry] of Object.entries(platforms)) {
    packages[`node_modules/${name}`] = { version: "2.9.6", dev: true, optional: true, ...entry };
  }
  return { packages };
}

const LINUX_X64 = { "@deno/linux-x64-glibc": { os: ["linux"], cpu: ["x64"], libc: ["glibc"] } };
const DARWIN = {
  "@deno/darwin-arm64": { os: ["darwin"], cpu: ["arm64"] },
  "@deno/darwin-x64": { os: ["darwin"], cpu: ["x64"] },
};
const LINUX_MUSL = { "@deno/linux-x64-musl": { os: ["linux"], cpu: ["x64"], libc: ["musl"] } };

describe("fitsPlatform", () => {
  it("reads os, cpu and libc lists as npm does, negations included", () => {
    assert.equal(fitsPlatform({ os: ["linux"], cpu: ["x64"], libc: ["glibc"] }, linux), true);
    assert.equal(fitsPlatform({ os: ["linux"], cpu: ["x64"], libc: ["musl"] }, linux), false);
    assert.equal(fitsPlatform({ os: ["darwin"] }, linux), false);
    assert.equal(fitsPlatform({ cpu: ["arm64"] }, linux), false);
    assert.equal(fitsPlatform({ os: ["!win32"] }, linux), true);
    assert.equal(fitsPlatform({ os: ["!linux"] }, linux), false);
    assert.equal(fitsPlatform({}, linux), true);
  });

  it("calls only optional packages of other platforms foreign", () => {
    assert.equal(isForeignOptional({ optional: true, os: ["darwin"] }, linux), true);
    assert.equal(isForeignOptional({ optional: true, os: ["linux"], cpu: ["x64"] }, linux), false);
    assert.equal(isForeignOptional({ os: ["darwin"] }, linux), false);
    assert.equal(isForeignOptional(undefined, linux), false);
  });
});

describe("lockDrift: what the registry may change", () => {
  it("accepts a registry that gained other platforms' optional packages (the 2026-12 case)", () => {
    const before = denoLock(LINUX_X64);
    const after = denoLock({ ...DARWIN, ...LINUX_X64, ...LINUX_MUSL });
    assert.deepEqual(lockDrift(before, after, linux), []);
  });

  it("accepts a registry that lacks optional packages the lockfile lists for other platforms", () => {
    const before = denoLock({ ...DARWIN, ...LINUX_X64 });
    const after = denoLock(LINUX_X64);
    assert.deepEqual(lockDrift(before, after, linux), []);
  });

  it("accepts the committed lockfile with its foreign optionals removed or one more added", () => {
    const lock: Lock = readJson("package-lock.json");
    const fewer = clone(lock);
    let removed = 0;
    for (const [key, entry] of Object.entries(fewer.packages)) {
      if (isForeignOptional(entry, linux)) {
        delete fewer.packages[key];
        removed++;
      }
    }
    assert.ok(removed > 0, "the committed lockfile lists other platforms' optional packages");
    assert.deepEqual(lockDrift(lock, fewer, linux), []);
    assert.deepEqual(lockDrift(fewer, lock, linux), []);
    const more = clone(lock);
    more.packages["node_modules/@deno/linux-riscv64-glibc"] = {
      version: "2.9.6",
      optional: true,
      os: ["linux"],
      cpu: ["riscv64"],
    };
    (more.packages["node_modules/deno"].optionalDependencies as Record<string, string>)[
      "@deno/linux-riscv64-glibc"
    ] = "2.9.6";
    assert.deepEqual(lockDrift(lock, more, linux), []);
  });
});

describe("lockDrift: what is a real drift", () => {
  it("fails when this platform's own package is added or missing", () => {
    const before = denoLock(DARWIN);
    const after = denoLock({ ...DARWIN, ...LINUX_X64 });
    assert.deepEqual(lockDrift(before, after, linux), [
      "@deno/linux-x64-glibc 2.9.6 was added",
      "deno: optionalDependencies @deno/linux-x64-glibc (none) -> 2.9.6",
    ]);
    assert.equal(lockDrift(after, before, linux).length, 2);
  });

  it("fails on a changed version, a new required package and a changed dependency range", () => {
    const before = denoLock(LINUX_X64);
    const version = clone(before);
    version.packages["node_modules/deno"].version = "2.9.7";
    assert.deepEqual(lockDrift(before, version, linux), ["deno changed from 2.9.6 to 2.9.7"]);
    const added = clone(before);
    added.packages["node_modules/left-pad"] = { version: "1.3.0" };
    assert.deepEqual(lockDrift(before, added, linux), ["left-pad 1.3.0 was added"]);
    const range = clone(before);
    range.packages[""].devDependencies = { deno: "2.9.7" };
    assert.deepEqual(lockDrift(before, range, linux), ["(root): devDependencies deno 2.9.6 -> 2.9.7"]);
  });

  it("fails on a foreign optional package whose version changed", () => {
    const before = denoLock({ ...DARWIN, ...LINUX_X64 });
    const after = clone(before);
    after.packages["node_modules/@deno/darwin-x64"].version = "2.9.7";
    assert.deepEqual(lockDrift(before, after, linux), ["@deno/darwin-x64 changed from 2.9.6 to 2.9.7"]);
  });
});

describe("manifestDrift", () => {
  it("finds no drift between the committed package.json and package-lock.json", () => {
    assert.deepEqual(manifestDrift(readJson("package.json"), readJson("package-lock.json")), []);
  });

  it("names every dependency package.json added, removed or changed", () => {
    const lock = readJson("package-lock.json");
    const pkg = clone(readJson("package.json"));
    pkg.dependencies["left-pad"] = "1.3.0";
    pkg.devDependencies.deno = "2.9.7";
    delete pkg.devDependencies.yjs;
    assert.deepEqual(manifestDrift(pkg, lock), [
      "dependencies: left-pad@1.3.0 is not in package-lock.json",
      `devDependencies: deno is 2.9.7 in package.json, ${
        lock.packages[""].devDependencies.deno
      } in package-lock.json`,
      "devDependencies: yjs is in package-lock.json only",
    ]);
  });
});

describe("onlyMissingOptionals", () => {
  const refusal = (lines: string[]) =>
    [
      "npm error code EUSAGE",
      "npm error `npm ci` can only install packages when your package.json and package-lock.json or " +
      "npm-shrinkwrap.json are in sync. Please update your lock file with `npm install` before continuing.",
      ...lines,
      "npm error Clean install a project",
    ].join("\n");

  it("is true when npm ci names only optional packages missing from the lockfile", () => {
    const lock = denoLock({ ...DARWIN, ...LINUX_X64 });
    (lock.packages["node_modules/deno"].optionalDependencies as Record<string, string>)["@deno/win32-x64"] =
      "2.9.6";
    const out = refusal(["npm error Missing: @deno/win32-x64@2.9.6 from lock file"]);
    assert.equal(onlyMissingOptionals(out, lock), true);
  });

  it("is false for a missing required package, an invalid one or another error", () => {
    const lock = denoLock(LINUX_X64);
    assert.equal(
      onlyMissingOptionals(refusal(["npm error Missing: left-pad@1.3.0 from lock file"]), lock),
      false,
    );
    assert.equal(
      onlyMissingOptionals(
        refusal(["npm error Invalid: lock file's deno@2.9.6 does not satisfy deno@2.9.7"]),
        lock,
      ),
      false,
    );
    assert.equal(onlyMissingOptionals("npm error code E404", lock), false);
  });
});
