/**
 * The servers an instance connects to (`servers`, or the deprecated `host`
 * and `port`), with `tls`, `auth` and `runtime`: checked, and turned into
 * targets that every instance configured alike shares.
 *
 * @module
 */
import { DEFAULT_HOST, DEFAULT_PORT } from "./connection.ts";
import { InvalidArgumentError } from "./errors.ts";
import { checkRuntime, type OpenSettings, poolKey, resolveTls, Secret, securityKey } from "./open.ts";
import type { LockOptions, Target } from "./options.ts";
import { eachServer, readServers } from "./servers.ts";
import { hostPort } from "./transport.ts";
import { checkHost, checkPort } from "./validate.ts";

/**
 * Instances configured alike share one list of targets: held locks are many,
 * and most carry the same servers, TLS settings and secret. Keyed by the
 * connect timeout, TLS settings and secret, and the servers in order. Bounded: emptied
 * when it grows past {@link MAX_SHARED_SETTINGS} entries.
 */
const sharedSettings = new Map<string, ReadonlyArray<Target>>();
const MAX_SHARED_SETTINGS = 256;

/**
 * Check the servers (`servers`, or the deprecated `host` and `port`), then
 * `tls` and `auth`, and return the targets. Checking builds only the key of
 * the shared list, so an instance configured like an earlier one allocates
 * nothing else here.
 */
function checkTargets(options: LockOptions, connectTimeoutMs: number): ReadonlyArray<Target> {
  const { servers, host, port } = options;
  let where = "";
  if (servers === undefined) {
    where = `\u0001${checkHost(host ?? DEFAULT_HOST, "host", true)}\u0000${checkPort(port ?? DEFAULT_PORT)}`;
  } else {
    if (host !== undefined || port !== undefined) {
      throw new InvalidArgumentError("give either servers or the deprecated host/port, not both");
    }
    eachServer(servers, (h, p) => {
      where += `\u0001${h}\u0000${p}`;
    });
  }
  const tls = resolveTls(options.tls);
  const auth = options.auth === undefined ? undefined : new Secret(options.auth);
  const runtime = checkRuntime(options.runtime);
  const how = `${connectTimeoutMs}\u0000${securityKey(tls, auth, runtime)}`;
  const known = sharedSettings.get(how + where);
  if (known !== undefined) return known;
  // The first of its kind: the targets, from what was just checked (read again).
  const pairs: ReadonlyArray<readonly [string, number]> =
    servers === undefined
      ? [[checkHost(host ?? DEFAULT_HOST, "host", true), checkPort(port ?? DEFAULT_PORT)]]
      : readServers(servers);
  const made = Object.freeze(
    pairs.map(([h, p]): Target => {
      const open: OpenSettings = { host: h, port: p, connectTimeoutMs, tls, auth, runtime };
      return { open, poolKey: poolKey(open), server: hostPort(h, p) };
    }),
  );
  if (sharedSettings.size >= MAX_SHARED_SETTINGS) sharedSettings.clear();
  sharedSettings.set(how + made.map((t) => `\u0001${t.open.host}\u0000${t.open.port}`).join(""), made);
  return made;
}

/** The targets made last, when made without `tls` or `auth`. */
let recent: ReadonlyArray<Target> | undefined;

/**
 * The targets of `options`: checked, or, when they name the servers of the
 * targets made last, those. A new instance per operation (the quick start's
 * way) then skips the checks and the shared list's key: values equal to ones
 * already checked pass the same checks. Only the targets themselves are
 * compared (never what options said earlier, which a getter may have changed
 * since); a runtime is told apart by identity, as the shared list's key
 * does, and checked again.
 * @throws InvalidArgumentError for invalid servers, `tls`, `auth` or `runtime`.
 */
export function connectionTargets(options: LockOptions, connectTimeoutMs: number): ReadonlyArray<Target> {
  const r = recent;
  if (r !== undefined) {
    const runtime = sameServers(options, connectTimeoutMs, r);
    if (runtime !== false) {
      checkRuntime(runtime);
      return r;
    }
  }
  const targets = checkTargets(options, connectTimeoutMs);
  const open = (targets[0] as Target).open;
  recent = open.tls === undefined && open.auth === undefined ? targets : undefined;
  return targets;
}

/**
 * Whether `options` name the servers `t` were made for (a `"host:port"` entry
 * as its target's `server` text, or a `[host, port]` pair), each option read
 * once, with their connect timeout and runtime and no `tls` or `auth`: if so
 * the runtime they give (`undefined`: the default), else `false`.
 */
function sameServers(options: LockOptions, connectTimeoutMs: number, t: ReadonlyArray<Target>): unknown {
  const { servers, host, port, tls, auth, runtime } = options;
  const first = (t[0] as Target).open;
  if ((tls !== undefined && tls !== false) || auth !== undefined) return false;
  if (runtime !== first.runtime || connectTimeoutMs !== first.connectTimeoutMs) return false;
  if (servers === undefined) {
    const same = t.length === 1 && (host ?? DEFAULT_HOST) === first.host && (port ?? DEFAULT_PORT) === first.port;
    return same ? runtime : false;
  }
  if (host !== undefined || port !== undefined || !Array.isArray(servers) || servers.length !== t.length) return false;
  for (let i = 0; i < t.length; i++) {
    const s: unknown = servers[i];
    const target = t[i] as Target;
    if (typeof s === "string") {
      if (s !== target.server) return false;
      continue;
    }
    const open = target.open;
    if (!Array.isArray(s) || s.length !== 2 || s[0] !== open.host || s[1] !== open.port) return false;
  }
  return runtime;
}
