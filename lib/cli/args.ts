/**
 * The one way every CLI reads its arguments: node:util `parseArgs` (built in, strict: unknown options and
 * stray positionals are errors) under a small declarative spec that also renders `--help`, plus typed,
 * validated accessors (integers with bounds, choices, paths). Errors are {@link ArgsError}s that name the
 * argument; {@link parseCli} prints them with the usage line and exits with status 2, never a stack trace.
 *
 * Relative paths resolve against the caller's directory: `deno task` runs in the project root and keeps the
 * directory it was called from in `INIT_CWD`.
 */
import { parseArgs } from "node:util";
import { isAbsolute, resolve } from "node:path";
import { TTA_MODES } from "../data/views.ts";

/** One option: `--name VALUE` (string) or `--name` (boolean). */
export type OptionSpec = {
  type: "string" | "boolean";
  /** One-letter alias (`-h`). */
  short?: string;
  /** Placeholder shown in the help (`N`, `DIR`); string options only. */
  value?: string;
  /** One line for `--help`. */
  help: string;
  /** Default shown in the help (parsing leaves absent options undefined). */
  default?: string;
};

/** A command: its usage lines, what it does, its options and how many positionals it takes. */
export type CommandSpec = {
  /** Task name as typed after `deno task`, e.g. `data`. */
  name: string;
  /** Usage forms after `deno task <name>`, e.g. `[--json] [--data DIR]`. */
  usage: string[];
  /** A sentence or two for `--help`. */
  summary: string;
  options: Record<string, OptionSpec>;
  /** Positional arguments allowed (default 0..0). */
  positionals?: { min?: number; max?: number };
  /** Extra text appended to `--help` (e.g. a list of experiments). */
  epilog?: string;
};

/** A bad command line; the message names the argument and what is wrong. */
export class ArgsError extends Error {
  override name = "ArgsError";
}

const HELP: OptionSpec = { type: "boolean", short: "h", help: "show this help" };

/**
 * `--tta MODE` and `--tta-average HOW` for the commands that apply a test-time augmentation to faces (predict,
 * export, serve): `auto`, the default, is the mode chosen on validation (lib/eval/tta.ts `resolveTta`).
 */
export function faceTtaOptions(what: string): Record<string, OptionSpec> {
  return {
    tta: {
      type: "string",
      value: "MODE",
      help: `test-time augmentation ${what}: auto (the mode chosen on validation), ${TTA_MODES.join(", ")}`,
      default: "auto",
    },
    "tta-average": {
      type: "string",
      value: "HOW",
      help: "average the views' prob or logit",
      default: "prob",
    },
  };
}

/** The directory relative paths given on the command line refer to: `INIT_CWD` (set by `deno task`) or cwd. */
export function callerDir(): string {
  return Deno.env.get("INIT_CWD") || Deno.cwd();
}

/** A path typed by the user, made absolute against the caller's directory ({@link callerDir}). */
export function userPath(p: string): string {
  return isAbsolute(p) ? p : resolve(callerDir(), p);
}

/**
 * A run argument: a folder path (relative to the caller's directory) when one exists there, else the name
 * as given (a run under checkpoints/).
 */
export function runArg(run: string): string {
  const p = userPath(run);
  try {
    if (Deno.statSync(p).isDirectory) return p;
  } catch {
    // not a folder here: a run name
  }
  return run;
}

/** The usage lines of a command. */
export function usage(spec: CommandSpec): string {
  return spec.usage.map((u, i) => `${i ? "      " : "usage:"} deno task ${spec.name} ${u}`.trimEnd()).join(
    "\n",
  );
}

/** The full `--help` text: usage, summary, options with their defaults, epilog. */
export function helpText(spec: CommandSpec): string {
  const opts = { ...spec.options, help: HELP };
  const rows = Object.entries(opts).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${
      o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""
    }`;
    return [flag, o.help + (o.default !== undefined ? ` (default ${o.default})` : "")];
  });
  const w = Math.max(...rows.map((r) => r[0].length));
  const lines = [
    usage(spec),
    "",
    spec.summary,
    "",
    "options:",
    ...rows.map(([f, h]) => `  ${f.padEnd(w)}  ${h}`),
  ];
  if (spec.epilog) lines.push("", spec.epilog);
  return lines.join("\n");
}

/** Parsed arguments with validating accessors; each error names the option. */
export class Args {
  constructor(
    readonly spec: CommandSpec,
    private readonly values: Record<string, string | boolean | undefined>,
    readonly positionals: string[],
  ) {}

  /** A boolean option. */
  flag(name: string): boolean {
    this.known(name);
    return this.values[name] === true;
  }

  /** A string option as given, or `fallback`. */
  string(name: string): string | undefined;
  string(name: string, fallback: string): string;
  string(name: string, fallback?: string): string | undefined {
    this.known(name);
    const v = this.values[name];
    return typeof v === "string" ? v : fallback;
  }

  /** An integer option in [min, max]; `fallback` when absent. "abc", "1.5", "" and out-of-range values throw. */
  int(name: string, o: { min?: number; max?: number; fallback: number }): number;
  int(name: string, o?: { min?: number; max?: number }): number | undefined;
  int(name: string, o: { min?: number; max?: number; fallback?: number } = {}): number | undefined {
    const s = this.string(name);
    if (s === undefined) return o.fallback;
    return parseIntArg(`--${name}`, s, o.min ?? 1, o.max);
  }

  /** A string option that must be one of `choices`. */
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T;
  choice<T extends string>(name: string, choices: readonly T[]): T | undefined;
  choice<T extends string>(name: string, choices: readonly T[], fallback?: T): T | undefined {
    const s = this.string(name);
    if (s === undefined) return fallback;
    if (!(choices as readonly string[]).includes(s)) {
      throw new ArgsError(`--${name} must be one of ${choices.join(", ")}, got "${s}"`);
    }
    return s as T;
  }

  /** A path option resolved against the caller's directory ({@link userPath}). */
  path(name: string): string | undefined {
    const s = this.string(name);
    if (s === undefined) return undefined;
    if (s.trim() === "") throw new ArgsError(`--${name} needs a path, got an empty string`);
    return userPath(s);
  }

  private known(name: string): void {
    if (!(name in this.spec.options)) {
      throw new Error(`bug: option --${name} is not declared by ${this.spec.name}`);
    }
  }
}

/** An integer argument in [min, max], or an ArgsError naming `what`. */
export function parseIntArg(what: string, s: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const t = s.trim();
  const n = /^[+-]?\d+$/.test(t) ? Number(t) : NaN;
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ArgsError(`${what} must be an integer ${range}, got "${s}"`);
  }
  return n;
}

/**
 * Parses `argv` against `spec`. Returns `"help"` for `--help`/`-h`; throws {@link ArgsError} for unknown
 * options, a missing option value, a value given to a flag, or too few / too many positionals.
 */
export function parseArgv(spec: CommandSpec, argv: string[]): Args | "help" {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, o] of Object.entries({ ...spec.options, help: HELP })) {
    options[name] = o.short ? { type: o.type, short: o.short } : { type: o.type };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new ArgsError(describeParseError(e as Error & { code?: string }, spec));
  }
  if (parsed.values.help) return "help";
  const { min = 0, max = 0 } = spec.positionals ?? {};
  const pos = parsed.positionals;
  if (pos.length > max) {
    const extra = pos.slice(max);
    throw new ArgsError(
      max === 0
        ? `unexpected argument${extra.length > 1 ? "s" : ""} ${extra.map((p) => `"${p}"`).join(" ")} ` +
          `(${spec.name} takes no positional arguments)`
        : `too many arguments: ${extra.map((p) => `"${p}"`).join(" ")}`,
    );
  }
  if (pos.length < min) throw new ArgsError("missing argument(s)");
  return new Args(spec, parsed.values as Record<string, string | boolean | undefined>, pos);
}

function describeParseError(e: Error & { code?: string }, spec: CommandSpec): string {
  const m = e.message;
  const opt = /'(-{1,2}[^' <]+)/.exec(m)?.[1] ?? "";
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const names = Object.keys(spec.options).map((n) => `--${n}`);
    return `unknown option ${opt}` + (names.length ? ` (${spec.name} takes ${names.join(", ")})` : "");
  }
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (/does not take an argument/.test(m)) return `option ${opt} is a flag and takes no value`;
    if (/argument missing|ambiguous/.test(m)) return `option ${opt} needs a value`;
  }
  return m.split("\n")[0];
}

/**
 * Parses `argv` for a CLI entry point: prints `--help` and exits 0, or prints `error: ...` with the usage and
 * exits 2 on a bad command line. `validate` runs on the result so its ArgsErrors are reported the same way.
 */
export function parseCli<T>(spec: CommandSpec, validate: (a: Args) => T, argv: string[] = Deno.args): T {
  try {
    const a = parseArgv(spec, argv);
    if (a === "help") {
      console.log(helpText(spec));
      Deno.exit(0);
    }
    return validate(a);
  } catch (e) {
    if (e instanceof ArgsError) usageError(spec, e.message);
    throw e;
  }
}

/** Prints `error: msg`, the usage and a pointer to `--help`, then exits with status 2. */
export function usageError(spec: CommandSpec, msg: string): never {
  console.error(`error: ${msg}\n${usage(spec)}\n(deno task ${spec.name} --help for all options)`);
  Deno.exit(2);
}
