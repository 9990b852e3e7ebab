/**
 * When is an installed tree in step with package.json and package-lock.json, and when has the
 * registry merely moved under us? Pure functions over parsed JSON, so the test runner's deps stage
 * and its tests (tests/lockfile.test.ts) share one decision.
 *
 * The registry's contents move: in 2026-11 it lacked the other platforms' optional packages of
 * `deno` and `bun` (`@deno/darwin-arm64` …), by 2026-12 it carried them, and `npm ci` refuses a
 * lockfile that lacks a package the registry offers. An optional package for a platform other than
 * this one is never installed here, so a difference in those alone is no reason to fail a build.
 * Everything else — a version, a package this platform installs, a changed package.json — is a
 * real drift and fails.
 *
 * Plain JavaScript with no imports: it runs on Node ≥ 20 before anything is installed.
 *
 * @module
 */

/**
 * @typedef {{ os?: string, arch?: string, libc?: string }} Platform
 * @typedef {{ version?: string, optional?: boolean, os?: string[], cpu?: string[], libc?: string[],
 *   dependencies?: Record<string, string>, optionalDependencies?: Record<string, string>,
 *   devDependencies?: Record<string, string> }} LockEntry
 * @typedef {{ packages?: Record<string, LockEntry> }} Lockfile
 */

/**
 * Whether an npm os/cpu/libc list admits a value: no list admits all; `["!win32"]` admits all
 * but win32.
 * @param {unknown} list
 * @param {string | undefined} value
 * @returns {boolean}
 */
function admits(list, value) {
  if (!Array.isArray(list) || value === undefined) return true;
  if (list.includes(value)) return true;
  return list.length > 0 && list.every((x) => String(x).startsWith("!")) && !list.includes(`!${value}`);
}

/**
 * Whether npm would install this lock entry on `platform` (its os, cpu and, on Linux, libc).
 * @param {LockEntry} entry
 * @param {Platform} platform
 * @returns {boolean}
 */
export function fitsPlatform(entry, platform) {
  if (!admits(entry.os, platform.os) || !admits(entry.cpu, platform.arch)) return false;
  if (platform.os === "linux" && Array.isArray(entry.libc)) return admits(entry.libc, platform.libc);
  return true;
}

/**
 * An optional package that this platform never installs: one the registry may gain or lose.
 * @param {LockEntry | undefined} entry
 * @param {Platform} platform
 * @returns {boolean}
 */
export function isForeignOptional(entry, platform) {
  return !!entry && entry.optional === true && !fitsPlatform(entry, platform);
}

const SECTIONS = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"];

/**
 * How package.json's dependency lists differ from what package-lock.json recorded for the root
 * (one sentence per difference; empty when they agree). A change here means the lockfile must be
 * regenerated and committed: never a registry effect.
 * @param {Record<string, unknown>} pkg parsed package.json
 * @param {Lockfile} lock parsed package-lock.json
 * @returns {string[]}
 */
export function manifestDrift(pkg, lock) {
  const root = /** @type {Record<string, unknown>} */ (lock?.packages?.[""] ?? {});
  const out = [];
  for (const section of SECTIONS) {
    const want = /** @type {Record<string, string>} */ (pkg?.[section] ?? {});
    const have = /** @type {Record<string, string>} */ (root[section] ?? {});
    for (const name of Object.keys(want).sort()) {
      if (!(name in have)) out.push(`${section}: ${name}@${want[name]} is not in package-lock.json`);
      else if (have[name] !== want[name]) {
        out.push(`${section}: ${name} is ${want[name]} in package.json, ${have[name]} in package-lock.json`);
      }
    }
    for (const name of Object.keys(have).sort()) {
      // npm also lists the optional dependencies among the lockfile's root dependencies.
      const optional = section === "dependencies" && name in (pkg?.optionalDependencies ?? {});
      if (!(name in want) && !optional) out.push(`${section}: ${name} is in package-lock.json only`);
    }
  }
  return out;
}

/**
 * How a lockfile written by `npm install` (`after`) differs from the committed one (`before`),
 * leaving out optional packages for other platforms that one of them lists and the other does not
 * (the registry gained or lost them). One sentence per difference; empty means the committed
 * lockfile still describes what this platform installs.
 * @param {Lockfile} before
 * @param {Lockfile} after
 * @param {Platform} platform
 * @returns {string[]}
 */
export function lockDrift(before, after, platform) {
  const a = before?.packages ?? {};
  const b = after?.packages ?? {};
  const out = [];
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  for (const key of keys) {
    const was = a[key];
    const now = b[key];
    const name = key === "" ? "(root)" : key.replace(/^.*node_modules\//, "");
    if (!was || !now) {
      if (isForeignOptional(was ?? now, platform)) continue;
      out.push(was ? `${name} ${was.version} was removed` : `${name} ${now.version} was added`);
      continue;
    }
    if (was.version !== now.version) {
      out.push(`${name} changed from ${was.version} to ${now.version}`);
      continue;
    }
    // A package's own optional dependencies may list the platform packages the registry gained.
    for (const section of SECTIONS) {
      const x = was[section] ?? {};
      const y = now[section] ?? {};
      for (const dep of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
        if (x[dep] === y[dep]) continue;
        const target = b[`node_modules/${dep}`] ?? a[`node_modules/${dep}`];
        if (
          section === "optionalDependencies" && (!(dep in x) || !(dep in y)) &&
          isForeignOptional(target, platform)
        ) continue;
        out.push(`${name}: ${section} ${dep} ${x[dep] ?? "(none)"} -> ${y[dep] ?? "(none)"}`);
      }
    }
  }
  return out;
}

/**
 * Whether `npm ci` failed only because the registry offers optional packages the lockfile lacks:
 * its output says the lockfile is out of sync and every problem it names is a missing package
 * that some locked package lists as optional.
 * @param {string} npmOutput
 * @param {Lockfile} lock
 * @returns {boolean}
 */
export function onlyMissingOptionals(npmOutput, lock) {
  if (!/package\.json and package-lock\.json or npm-shrinkwrap\.json are in sync/.test(npmOutput)) {
    return false;
  }
  const problems = npmOutput.split("\n").filter((l) => /^npm error (Missing|Invalid): /.test(l));
  if (!problems.length) return false;
  const optional = new Set();
  for (const entry of Object.values(lock?.packages ?? {})) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) optional.add(name);
  }
  return problems.every((l) => {
    const m = l.match(/^npm error Missing: (@?[^@\s]+)@\S* from lock file$/);
    return !!m && optional.has(m[1]);
  });
}
