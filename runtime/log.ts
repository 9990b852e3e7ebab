/**
 * Logging of a running node: one line per event on standard error, filtered
 * by level. The level comes from `LATTICE_LOG=debug|info|warn|error|silent`
 * and defaults to `warn`, so a node is quiet except for warnings and errors
 * (the `ready` line of `lattice serve` goes to standard output and is not a
 * log line).
 *
 * A line reads `2026-01-02T03:04:05.678Z warn http: message key=value …`;
 * values with spaces or quotes are JSON-quoted so a line stays one line.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger({ level: "info", write: (line) => lines.push(line) });
 * log.info("http", "listening", { url: "http://127.0.0.1:7420" });
 * log.debug("http", "not shown");
 * console.log(lines.length); // 1
 * ```
 *
 * @module
 */
import { systemWorld, type World } from "../core/world.ts";
import { getEnv } from "./env.ts";

/**
 * Log levels, from the most verbose; `silent` logs nothing.
 *
 * @example
 * ```ts
 * import { createLogger, type LogLevel } from "../mod.ts";
 * for (const level of ["info", "warn", "silent"] as LogLevel[]) {
 *   const lines: string[] = [];
 *   createLogger({ level, write: (line) => lines.push(line) }).warn("net", "peer over budget");
 *   console.log(level, lines.length); // info 1, then warn 1, then silent 0
 * }
 * ```
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** Extra facts of a log line. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

/**
 * Writes log lines of one node.
 *
 * @example
 * ```ts
 * import { createLogger, type Logger } from "../mod.ts";
 * const logger: Logger = createLogger({ level: "warn", write: (line) => console.log(line.slice(25)) });
 * logger.info("sync", "session done"); // below the level: not written
 * logger.warn("net", "cannot dial", { peer: "12D3Koo" }); // warn net: cannot dial peer=12D3Koo
 * console.log(logger.level); // warn
 * ```
 */
export interface Logger {
  /** The lowest level written. */
  readonly level: LogLevel;
  debug(scope: string, message: string, fields?: LogFields): void;
  info(scope: string, message: string, fields?: LogFields): void;
  warn(scope: string, message: string, fields?: LogFields): void;
  error(scope: string, message: string, fields?: LogFields): void;
}

/** Whether `x` can serve as a {@link Logger}: it has the four methods (its `level` is not needed). */
export function isLogger(x: unknown): x is Logger {
  return typeof x === "object" && x !== null &&
    ["debug", "info", "warn", "error"].every((m) => typeof (x as Record<string, unknown>)[m] === "function");
}

/**
 * Options of {@link createLogger}.
 *
 * @example
 * ```ts
 * import { createLogger, type LoggerOptions, systemWorld } from "../mod.ts";
 * const options: LoggerOptions = { level: "debug", write: console.log, world: { ...systemWorld, now: () => 0 } };
 * const logger = createLogger(options);
 * logger.debug("sync", "started", { peers: 2 }); // 1970-01-01T00:00:00.000Z debug sync: started peers=2
 * ```
 */
export interface LoggerOptions {
  /** Lowest level written (default: `LATTICE_LOG`, else `warn`). */
  readonly level?: LogLevel;
  /** Where a line goes (default: standard error through `console.error`). */
  readonly write?: (line: string) => void;
  /** Whose clock stamps the lines (default {@link systemWorld}). */
  readonly world?: World;
}

/** Whether `s` names a log level. */
export function isLogLevel(s: unknown): s is LogLevel {
  return typeof s === "string" && Object.hasOwn(RANK, s);
}

/**
 * The level set by `LATTICE_LOG`, or `warn`. Throws `RangeError` for a value
 * that is not a level, so a typo does not silently hide logs.
 */
export function levelFromEnv(): LogLevel {
  const v = getEnv("LATTICE_LOG");
  if (v === undefined || v === "") return "warn";
  const level = v.toLowerCase();
  if (!isLogLevel(level)) {
    throw new RangeError(`LATTICE_LOG must be debug, info, warn, error or silent, got ${JSON.stringify(v)}`);
  }
  return level;
}

/**
 * Creates a {@link Logger}.
 *
 * @example
 * ```ts
 * import { createLogger } from "../mod.ts";
 * const lines: string[] = [];
 * const logger = createLogger({ level: "info", write: (line) => lines.push(line) });
 * logger.debug("sync", "not written");
 * logger.info("sync", "session done", { records: 3, note: "two words" });
 * console.log(lines.length, lines[0].slice(25)); // 1 info sync: session done records=3 note="two words"
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? levelFromEnv();
  const min = RANK[level];
  const write = options.write ?? ((line: string) => console.error(line));
  const world = options.world ?? systemWorld;
  const at = (l: Exclude<LogLevel, "silent">) => (scope: string, message: string, fields?: LogFields) => {
    if (RANK[l] < min) return;
    try {
      write(formatLine(l, scope, message, fields, world.now()));
    } catch {
      // A closed stderr must not take the node down.
    }
  };
  return { level, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** One log line, without the line break, stamped with `at` (ms since the epoch; default now). */
export function formatLine(
  level: string,
  scope: string,
  message: string,
  fields?: LogFields,
  at: number = systemWorld.now(),
): string {
  let line = `${new Date(at).toISOString()} ${level} ${scope}: ${message.replace(/\s*\n\s*/g, " ")}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const s = String(v);
      line += ` ${k}=${/^[^\s"=]+$/.test(s) ? s : JSON.stringify(s)}`;
    }
  }
  return line;
}

/** A logger that writes nothing. */
export const silentLogger: Logger = createLogger({ level: "silent" });
