/**
 * The command line's grammar: subcommand, options, key and command. Parsing
 * only; every value is checked here, before anything connects.
 *
 * @module
 */
import { closest } from "../validate.ts";
import { EXIT } from "./exit.ts";

/** A command line that cannot be run as written; the message says why. */
export class UsageError extends Error {
  /** @param message What is wrong, and what to write instead. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Options shared by lock, sem and stats. */
export interface CommonArgs {
  /** `--servers`, as written (else `DFLOCKD_SERVERS`). */
  servers: string | undefined;
  /** `--timeout`, in milliseconds (`500ms`, `90s`, `5m`, `2h`; a bare number is seconds). */
  timeoutMs: number | undefined;
  /** `--lease` seconds. */
  leaseS: number | undefined;
  /** `--tls`, or implied by `--tls-ca`. */
  tls: boolean;
  /** `--tls-ca` file. */
  tlsCa: string | undefined;
  /** `--auth-token-file` file. */
  authTokenFile: string | undefined;
  /** `--quiet`. */
  quiet: boolean;
  /** `--fence-from-token` (lock and sem): the server is dflockd v2.1+, whose tokens carry the fence. */
  fenceFromToken: boolean;
}

/** A parsed command line. */
export type Parsed =
  | { readonly kind: "help"; readonly topic: HelpTopic | undefined }
  | { readonly kind: "version" }
  | {
      readonly kind: "lock" | "sem";
      /** The KEY word, then each `--key`, in order; at least one. */
      readonly keys: readonly string[];
      /** `--limit`, for `sem`. */
      readonly limit: number;
      /** The command after `--`; empty: hold until SIGINT or SIGTERM. */
      readonly command: readonly string[];
      /** `--grace` seconds between SIGTERM and SIGKILL when the lock is lost. */
      readonly graceS: number;
      /** `--wait`: wait without limit. */
      readonly wait: boolean;
      /** `--conflict-exit-code`: the status when busy. */
      readonly busyCode: number;
      readonly common: CommonArgs;
    }
  | { readonly kind: "stats"; readonly json: boolean; readonly common: CommonArgs }
  /** `serve`: the words after it, dflockd's flags, for the server's own parser. */
  | { readonly kind: "serve"; readonly flags: readonly string[] };

/** A subcommand with help of its own. */
export type HelpTopic = "lock" | "sem" | "stats" | "serve";

/** Default `--grace`, in seconds. */
export const DEFAULT_GRACE_S = 10;

/** Longest `--timeout`, in milliseconds (24 hours); `--wait` waits without limit. */
export const MAX_TIMEOUT_MS = 86_400_000;

/** Milliseconds per unit of a duration. */
const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const SUBCOMMANDS = new Set(["lock", "sem", "stats", "serve"]);
/** Options taking a value, by subcommand ("*" for every one). */
const VALUED: Record<string, ReadonlySet<string>> = {
  "*": new Set(["--servers", "--timeout", "--lease", "--tls-ca", "--auth-token-file"]),
  lock: new Set(["--grace", "--key", "--conflict-exit-code"]),
  sem: new Set(["--grace", "--limit", "--key", "--conflict-exit-code"]),
  stats: new Set(),
};
const FLAGS: Record<string, ReadonlySet<string>> = {
  "*": new Set(["--tls", "--quiet", "--help", "--version"]),
  lock: new Set(["--wait", "--fence-from-token"]),
  sem: new Set(["--wait", "--fence-from-token"]),
  stats: new Set(["--json"]),
};
const SHORT: Record<string, string> = { "-q": "--quiet", "-h": "--help", "-V": "--version" };
/** Options that may be given more than once. */
const REPEATED: ReadonlySet<string> = new Set(["--key"]);
/** Ways of passing a secret on the command line, which is refused. */
const SECRETS = new Set(["--auth", "--auth-token", "--token", "--secret", "--password"]);

/**
 * Parse the arguments after the program's name.
 *
 * @param argv E.g. `["lock", "deploy", "--timeout", "90s", "--", "make", "deploy"]`.
 * @returns What to do.
 * @throws UsageError naming what is wrong.
 */
export function parseArgs(argv: readonly string[]): Parsed {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    const topic = sub === "help" ? rest[0] : undefined;
    return { kind: "help", topic: topic !== undefined && SUBCOMMANDS.has(topic) ? (topic as HelpTopic) : undefined };
  }
  if (sub === "--version" || sub === "-V") return { kind: "version" };
  // dflockd's flags follow dflockd's rules (src/server/config.ts), not these.
  if (sub === "serve") return { kind: "serve", flags: rest };
  if (!SUBCOMMANDS.has(sub)) {
    const near = closest(sub, SUBCOMMANDS);
    throw new UsageError(
      `unknown subcommand ${JSON.stringify(sub)}${near ? ` (did you mean ${near}?)` : ""}; expected lock, sem, stats or serve`,
    );
  }
  const dash = rest.indexOf("--");
  const own = dash < 0 ? rest : rest.slice(0, dash);
  const command = dash < 0 ? [] : rest.slice(dash + 1);
  const values = new Map<string, string>();
  const keyOptions: string[] = [];
  const flags = new Set<string>();
  const positional: string[] = [];
  const valued = new Set([...(VALUED["*"] as Set<string>), ...(VALUED[sub] as Set<string>)]);
  const flagged = new Set([...(FLAGS["*"] as Set<string>), ...(FLAGS[sub] as Set<string>)]);
  for (let i = 0; i < own.length; i++) {
    const arg = own[i] as string;
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = SHORT[arg] ?? (eq > 0 ? arg.slice(0, eq) : arg);
    if (SECRETS.has(name)) {
      throw new UsageError(
        `${name}: a secret on the command line is visible to every user of this machine (ps, shell history); ` +
          "put it in a file and pass --auth-token-file FILE, or set DFLOCKD_AUTH_TOKEN",
      );
    }
    if (flagged.has(name)) {
      if (eq > 0) throw new UsageError(`${name} takes no value`);
      flags.add(name);
    } else if (valued.has(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : own[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      if (REPEATED.has(name)) {
        keyOptions.push(value);
        continue;
      }
      if (values.has(name)) throw new UsageError(`${name} is given twice`);
      values.set(name, value);
    } else {
      const all = new Set([...valued, ...flagged]);
      const near = closest(name, all);
      const elsewhere =
        sub === "stats" ? "" : name === "--json" ? " (--json is for stats)" : ` (if it is the key, write --key=${arg})`;
      throw new UsageError(
        `${sub}: unknown option ${name}${near ? ` (did you mean ${near}?)` : elsewhere}; see dflockd-client help ${sub}`,
      );
    }
  }
  if (flags.has("--help")) return { kind: "help", topic: sub as "lock" };
  if (flags.has("--version")) return { kind: "version" };
  const common: CommonArgs = {
    servers: values.get("--servers"),
    timeoutMs: duration(values, "--timeout"),
    leaseS: seconds(values, "--lease", 1),
    tls: flags.has("--tls") || values.has("--tls-ca"),
    tlsCa: file(values, "--tls-ca"),
    authTokenFile: file(values, "--auth-token-file"),
    quiet: flags.has("--quiet"),
    fenceFromToken: flags.has("--fence-from-token"),
  };
  if (sub === "stats") {
    if (positional.length > 0 || dash >= 0) {
      throw new UsageError(
        `stats takes no key or command, got ${JSON.stringify([...positional, ...command].join(" "))}`,
      );
    }
    return { kind: "stats", json: flags.has("--json"), common };
  }
  if (positional.length > 1) {
    const found = positional.slice(1).join(" ");
    throw new UsageError(
      dash < 0
        ? `${sub}: put the command after "--": dflockd-client ${sub} ${positional[0]} -- ${found}`
        : `${sub}: one key only as a word, got ${JSON.stringify(positional.join(" "))}; give each further key with --key`,
    );
  }
  const keys = [...positional, ...keyOptions];
  if (keys.length === 0) throw new UsageError(`${sub}: which key? Usage: dflockd-client ${sub} KEY [-- CMD [ARGS...]]`);
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice !== undefined) throw new UsageError(`${sub}: the key ${JSON.stringify(twice)} is given twice`);
  if (dash >= 0 && command.length === 0) {
    throw new UsageError(`${sub}: no command after "--" (to hold the lock until SIGINT or SIGTERM, leave out "--")`);
  }
  if (command[0] === "") throw new UsageError(`${sub}: the command's name is empty`);
  const wait = flags.has("--wait");
  if (wait && common.timeoutMs !== undefined) {
    throw new UsageError(`${sub}: --wait and --timeout together; give one (--wait waits without limit)`);
  }
  let limit = 1;
  if (sub === "sem") {
    const l = values.get("--limit");
    if (l === undefined) throw new UsageError("sem: --limit N is required (how many may hold a slot at once)");
    limit = whole("--limit", l, 1, Number.MAX_SAFE_INTEGER);
  }
  const busy = values.get("--conflict-exit-code");
  return {
    kind: sub as "lock" | "sem",
    keys,
    limit,
    command,
    graceS: seconds(values, "--grace", 0) ?? DEFAULT_GRACE_S,
    wait,
    busyCode: busy === undefined ? EXIT.BUSY : whole("--conflict-exit-code", busy, 0, 255),
    common,
  };
}

/**
 * A duration option in milliseconds: a whole number of seconds, or a whole
 * number with a unit (`500ms`, `90s`, `5m`, `2h`); 0 to {@link MAX_TIMEOUT_MS}.
 */
function duration(values: Map<string, string>, name: string): number | undefined {
  const text = values.get(name);
  if (text === undefined) return undefined;
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text);
  if (m === null) {
    throw new UsageError(
      `${name} takes a whole number of seconds, or one with a unit (500ms, 90s, 5m, 2h), got ${JSON.stringify(text)}`,
    );
  }
  const ms = Number(m[1]) * (UNITS[m[2] ?? "s"] as number);
  if (ms > MAX_TIMEOUT_MS) {
    throw new UsageError(
      `${name} must be from 0 to ${MAX_TIMEOUT_MS / 1000} seconds (24h), got ${text}; --wait waits without limit`,
    );
  }
  return ms;
}

function seconds(values: Map<string, string>, name: string, min: number): number | undefined {
  const v = values.get(name);
  return v === undefined ? undefined : whole(name, v, min, 3600);
}

function whole(name: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) {
    const unit = /^\d+(ms|s|m|h)$/.test(text) ? " (seconds, as a plain number)" : "";
    throw new UsageError(`${name} takes a whole number${unit}, got ${JSON.stringify(text)}`);
  }
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${name} must be from ${min} to ${max}, got ${text}`);
  return n;
}

function file(values: Map<string, string>, name: string): string | undefined {
  const v = values.get(name);
  if (v === "") throw new UsageError(`${name} needs a file name`);
  return v;
}
