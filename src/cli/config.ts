/**
 * From parsed options, the environment and the files they name to the
 * options of a {@link DflockdClient}.
 *
 * @module
 */
import type { ClientOptions } from "../client.ts";
import { DEFAULT_PORT } from "../connection.ts";
import { AuthError } from "../errors.ts";
import { hostPortReason, splitHostPort } from "../servers.ts";
import type { CommonArgs } from "./args.ts";
import { UsageError } from "./args.ts";
import type { CliHost } from "./host.ts";

/** The environment variables the command line reads. */
export const ENV = { servers: "DFLOCKD_SERVERS", authToken: "DFLOCKD_AUTH_TOKEN" } as const;

/** A file named by an option could not be read; the message names the option and the file. */
export class InputError extends Error {
  /** @param message Which option, which file, and what the runtime said. */
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

/**
 * `host:port,host:port` as `[host, port]` pairs. A host alone means port
 * 6388; an IPv6 address goes in brackets (`[::1]:6388`).
 *
 * @param text The list, as written.
 * @param from Where it came from, for messages (`--servers`, `DFLOCKD_SERVERS`).
 * @returns The servers, in order.
 * @throws UsageError for an empty entry, a URL, a bad port, an unbracketed IPv6
 *   address, or brackets or whitespace where they cannot be.
 */
export function parseServers(text: string, from: string): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    if (entry === "") throw new UsageError(`${from}: empty entry in ${JSON.stringify(text)}`);
    const s = splitHostPort(entry, DEFAULT_PORT);
    if (!s.ok) {
      if (s.problem === "ipv6") {
        throw new UsageError(`${from}: put an IPv6 address in brackets: [${entry}]:${DEFAULT_PORT}`);
      }
      if (s.problem === "form" || s.problem === "noPort") {
        throw new UsageError(`${from}: ${JSON.stringify(entry)} is not host:port (port 1 to 65535)`);
      }
      throw new UsageError(`${from}: ${JSON.stringify(entry)}: ${hostPortReason(s.problem, entry)}`);
    }
    out.push([s.host, s.port]);
  }
  return out;
}

/**
 * The client's options: servers, TLS and auth from options, environment and
 * files; the lease from `--lease`.
 *
 * @param common Parsed options.
 * @param host Where the environment and files come from.
 * @returns Options for `new DflockdClient()`.
 * @throws UsageError for a bad server list or an empty secret; InputError for a file that cannot be read.
 */
export async function clientOptions(common: CommonArgs, host: CliHost): Promise<ClientOptions> {
  const options: ClientOptions = { maxIdlePerServer: 2 };
  if (common.servers !== undefined) options.servers = parseServers(common.servers, "--servers");
  else {
    const servers = host.env(ENV.servers);
    // An empty variable is an unset one; an empty --servers is a mistake (parseServers refuses it).
    if (servers !== undefined && servers.trim() !== "") options.servers = parseServers(servers, ENV.servers);
  }
  if (common.tlsCa !== undefined) options.tls = { ca: await read(host, "--tls-ca", common.tlsCa) };
  else if (common.tls) options.tls = true;
  if (common.authTokenFile !== undefined) {
    const token = (await read(host, "--auth-token-file", common.authTokenFile)).replace(/\r?\n$/, "");
    if (token === "") throw new UsageError(`--auth-token-file: ${common.authTokenFile} is empty`);
    options.auth = token;
  } else {
    const token = host.env(ENV.authToken);
    if (token !== undefined && token !== "") options.auth = token;
  }
  if (common.leaseS !== undefined) options.leaseTtlS = common.leaseS;
  if (common.fenceFromToken) options.fenceFromToken = true;
  return options;
}

async function read(host: CliHost, option: string, path: string): Promise<string> {
  try {
    return await host.readTextFile(path);
  } catch (err) {
    throw new InputError(`${option}: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * A server's error as the command line prints it: the library's message,
 * but for a refused or missing auth token the command line's own fix
 * (`--auth-token-file FILE` or `DFLOCKD_AUTH_TOKEN`) in place of the
 * library's `auth` option. Never the secret.
 *
 * @param err What the library threw or reported.
 * @returns The message.
 */
export function cliMessage(err: Error): string {
  if (!(err instanceof AuthError)) return err.message;
  const where = err.server === undefined ? "" : `${err.server}: `;
  const replied = '(server replied "error_auth")';
  const give = `--auth-token-file FILE or ${ENV.authToken}`;
  if (err.tokenSent === true) {
    return `${where}authentication failed: the server refused the auth token; check the token given by ${give} against the server's --auth-token ${replied}`;
  }
  if (err.tokenSent === false) {
    return `${where}authentication failed: the server requires an auth token and none was given; give the server's --auth-token with ${give} ${replied}`;
  }
  return `${err.message}; the token is given by ${give}`;
}
