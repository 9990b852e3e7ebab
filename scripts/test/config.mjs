/**
 * Where the runner works and how long it waits: the repository root, the stage names and the
 * timeouts (each overridable through a LATTICE_* environment variable listed in --help).
 *
 * @module
 */

import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = path.join(ROOT, "node_modules", ".bin");
export const BROWSER_DIR = path.join(ROOT, "tests", "_browser");
export const STAGES = ["checks", "deno", "bun", "browser"];

const envNumber = (name, fallback) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
export const STAGE_TIMEOUT_MS = envNumber("LATTICE_STAGE_TIMEOUT", 1200) * 1000;
export const CHECK_TIMEOUT_MS = envNumber("LATTICE_CHECK_TIMEOUT", 600) * 1000;
export const TEST_TIMEOUT_MS = envNumber("LATTICE_TEST_TIMEOUT", 300) * 1000;
export const NPM_TIMEOUT_MS = 900 * 1000;
export const BROWSER_FILE_TIMEOUT_MS = envNumber("LATTICE_FILE_TIMEOUT", 600) * 1000;
