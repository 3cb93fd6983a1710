/**
 * The command line's entry: parse, configure, run, and exit with a status
 * that says what happened. Runtime adapters call {@link main} with their host.
 *
 * @module
 */
import { type ClientOptions, DflockdClient } from "../client.ts";
import { DEFAULT_HOST, DEFAULT_PORT } from "../connection.ts";
import { AuthError, InvalidArgumentError, LockError } from "../errors.ts";
import { DEFAULT_ACQUIRE_TIMEOUT_S } from "../options.ts";
import { hostPort } from "../transport.ts";
import { VERSION } from "../version.ts";
import { parseArgs, UsageError } from "./args.ts";
import { clientOptions, cliMessage, ENV, InputError } from "./config.ts";
import { EXIT } from "./exit.ts";
import { helpText } from "./help.ts";
import type { CliHost } from "./host.ts";
import { runUnderLock } from "./run.ts";
import { serve } from "./serve.ts";
import { statsJson, statsTable } from "./stats.ts";

/**
 * Run the command line on `host` and exit with its status.
 *
 * @param host The runtime's arguments, streams, signals and processes.
 * @returns Never: the process exits.
 */
export async function main(host: CliHost): Promise<never> {
  let code: number;
  try {
    code = await run(host);
  } catch (err) {
    await host.stderr.write(`dflockd-client: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    code = EXIT.INTERNAL;
  }
  return host.exit(code);
}

/**
 * Run the command line on `host`; the exit status it ends with.
 *
 * @param host The runtime.
 * @returns The exit status.
 */
export async function run(host: CliHost): Promise<number> {
  const fail = async (code: number, message: string): Promise<number> => {
    await host.stderr.write(`dflockd-client: ${message}\n`);
    return code;
  };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(host.args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return fail(EXIT.USAGE, `${err.message}\n(dflockd-client --help shows every option)`);
  }
  if (parsed.kind === "help") {
    await host.stdout.write(helpText(parsed.topic));
    return EXIT.OK;
  }
  if (parsed.kind === "version") {
    await host.stdout.write(`dflockd-client ${VERSION} (${host.describe})\n`);
    return EXIT.OK;
  }
  if (parsed.kind === "serve") return serve(parsed.flags, host);
  let client: DflockdClient | undefined;
  try {
    const options: ClientOptions = await clientOptions(parsed.common, host);
    if (parsed.common.servers === undefined && host.envDenied(ENV.servers) && !parsed.common.quiet) {
      const note = `${ENV.servers} cannot be read without --allow-env=${ENV.servers}, so the server is ${hostPort(DEFAULT_HOST, DEFAULT_PORT)}`;
      await host.stderr.write(`dflockd-client: note: ${note}; pass --servers to choose them\n`);
    }
    if (parsed.kind === "stats") {
      const t = parsed.common.timeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_S * 1000;
      if (t < 1000) return fail(EXIT.USAGE, "stats: --timeout must be at least 1 second");
      if (t > 3_600_000) return fail(EXIT.USAGE, "stats: --timeout must be at most 3600 seconds (1h)");
      options.connectTimeoutMs = options.requestTimeoutMs = t;
      client = new DflockdClient(options);
      const all = await client.stats();
      await host.stdout.write(parsed.json ? statsJson(all) : statsTable(all));
      if (all.every((s) => s.ok)) return EXIT.OK;
      return all.some((s) => !s.ok && s.error instanceof AuthError) ? EXIT.AUTH : EXIT.UNAVAILABLE;
    }
    client = new DflockdClient(options);
    const { kind, keys, limit, command, graceS, wait, busyCode, common } = parsed;
    const req = {
      kind,
      keys,
      limit,
      command,
      graceS,
      wait,
      busyCode,
      timeoutMs: common.timeoutMs,
      quiet: common.quiet,
    };
    return await runUnderLock(req, options, client, host);
  } catch (err) {
    if (err instanceof UsageError || err instanceof InvalidArgumentError) return fail(EXIT.USAGE, err.message);
    if (err instanceof InputError) return fail(EXIT.NO_INPUT, err.message);
    if (err instanceof AuthError) return fail(EXIT.AUTH, cliMessage(err));
    if (err instanceof LockError) return fail(EXIT.UNAVAILABLE, err.message);
    throw err;
  } finally {
    client?.close();
  }
}
