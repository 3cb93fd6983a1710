/**
 * A *scripted fake server*, in the test's own process: it is not dflockd. It
 * answers each three-line request with whatever the test's script returns,
 * for reply forms neither the double nor a real dflockd we can run here
 * gives: a cluster follower's `error_not_leader [host:port]`, or v2.1's tokens
 * that carry a fence. It records every request, per connection.
 */
import * as net from "node:net";

/** One request as the fake read it: command, key, argument; and the connection's number (from 1). */
export interface ScriptedRequest {
  readonly cmd: string;
  readonly key: string;
  readonly arg: string;
  readonly conn: number;
}

/** The reply line for `req` (without its newline), or `undefined` to send nothing. */
export type Script = (req: ScriptedRequest) => string | undefined;

/** A running scripted fake. */
export interface ScriptedServer {
  readonly host: string;
  readonly port: number;
  /** `host:port`. */
  readonly address: string;
  /** Every request so far, in the order read. */
  readonly requests: ScriptedRequest[];
  /** The requests of command `cmd` so far. */
  count(cmd: string): number;
  stop(): Promise<void>;
}

/** Start a scripted fake on a free loopback port. */
export async function startScripted(script: Script): Promise<ScriptedServer> {
  const requests: ScriptedRequest[] = [];
  const sockets = new Set<net.Socket>();
  let conns = 0;
  const server = net.createServer((sock) => {
    const conn = ++conns;
    sockets.add(sock);
    sock.setNoDelay(true);
    sock.on("error", () => {});
    sock.on("close", () => sockets.delete(sock));
    let buf = "";
    let lines: string[] = [];
    sock.on("data", (chunk) => {
      buf += chunk.toString("latin1");
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (lines.length < 3) continue;
        const [cmd, key, arg] = lines as [string, string, string];
        lines = [];
        const req = { cmd, key, arg, conn };
        requests.push(req);
        const line = script(req);
        if (line !== undefined && !sock.destroyed) sock.write(`${line}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: "127.0.0.1",
    port,
    address: `127.0.0.1:${port}`,
    requests,
    count: (cmd) => requests.filter((r) => r.cmd === cmd).length,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A v2.1-shaped token: `fence` as 16 hex digits, then 16 of salt. */
export function fencedToken(fence: bigint, salt = "0123456789abcdef"): string {
  return fence.toString(16).padStart(16, "0") + salt;
}
