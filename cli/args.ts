/**
 * The command line parsed strictly against the tables of cli/commands.ts:
 * unknown, repeated or misplaced options and a wrong number of arguments are
 * usage errors (exit 2), and so are JSON arguments and counts that do not
 * parse. `bench` keeps the arguments after it untouched for its own runner.
 *
 * @module
 */
import { fromJson } from "../core/json.ts";
import { COMMANDS, FLAGS, GLOBAL_FLAGS } from "./commands.ts";
import { checkArgument, UsageError } from "./errors.ts";

export interface Parsed {
  readonly command: string | undefined;
  readonly positionals: string[];
  readonly flags: Map<string, string | true | string[]>;
  /** For `bench`: the arguments after the command word, untouched. */
  readonly rest: string[];
}

/** Splits the command line; strict: unknown and repeated options are usage errors. */
export function parseArgs(args: readonly string[]): Parsed {
  let command: string | undefined;
  const positionals: string[] = [];
  const flags = new Map<string, string | true | string[]>();
  let rest: string[] = [];
  let flagsEnded = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (flagsEnded || arg === "-" || !arg.startsWith("-")) {
      if (command === undefined && !flagsEnded) {
        command = arg;
        if (arg === "bench") {
          rest = args.slice(i + 1);
          break;
        }
      } else positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      flagsEnded = true;
      continue;
    }
    if (arg === "-h") {
      flags.set("help", true);
      continue;
    }
    if (!arg.startsWith("--")) {
      throw new UsageError(`unknown option ${arg} (put "--" before arguments that start with "-")`, command);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = Object.hasOwn(FLAGS, name) ? FLAGS[name] : undefined;
    if (!spec) throw new UsageError(`unknown option --${name}`, command);
    let value: string | true = true;
    if (spec.value) {
      if (eq >= 0) value = arg.slice(eq + 1);
      else if (i + 1 < args.length && !args[i + 1].startsWith("--")) value = args[++i];
      else if (i + 1 < args.length) {
        throw new UsageError(
          `option --${name} needs a value (write --${name}=VALUE for one that starts with --)`,
          command,
        );
      } else throw new UsageError(`option --${name} needs a value`, command);
      if (value === "") throw new UsageError(`option --${name} needs a value`, command);
    } else if (eq >= 0) {
      throw new UsageError(`option --${name} takes no value`, command);
    }
    const prev = flags.get(name);
    if (spec.repeat) flags.set(name, [...(Array.isArray(prev) ? prev : []), value as string]);
    else if (prev !== undefined) throw new UsageError(`option --${name} is given more than once`, command);
    else flags.set(name, value);
  }
  if (command === undefined && flagsEnded && positionals.length > 0) command = positionals.shift();
  return { command, positionals, flags, rest };
}

/** Checks the options and the number of arguments against the command's spec. */
export function checkUsage(name: string, p: Parsed): void {
  const spec = COMMANDS[name];
  const allowed = new Set([...GLOBAL_FLAGS, ...(spec.flags ?? [])]);
  for (const flag of p.flags.keys()) {
    if (!allowed.has(flag)) throw new UsageError(`option --${flag} does not apply to ${name}`, name);
  }
  const required = spec.args.filter((a) => !a.startsWith("[")).length;
  if (p.positionals.length < required) {
    throw new UsageError(`missing argument ${spec.args[p.positionals.length]}`, name);
  }
  if (p.positionals.length > spec.args.length) {
    const extra = p.positionals[spec.args.length];
    throw new UsageError(`unexpected extra argument ${JSON.stringify(extra)}`, name);
  }
}

export function parseJsonArgument(command: string, arg: string, text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`argument ${arg} is not valid JSON: ${(e as Error).message}`, command);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(
      `argument ${arg} must be a JSON object, got ${
        Array.isArray(parsed) ? "an array" : parsed === null ? "null" : `a ${typeof parsed}`
      }`,
      command,
    );
  }
  return checkArgument(command, arg, () => fromJson(parsed));
}

export function parseCount(command: string, flag: string, text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(
      `option --${flag} must be a non-negative integer, got ${JSON.stringify(text)}`,
      command,
    );
  }
  return Number(text);
}
