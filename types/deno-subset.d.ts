/**
 * The few Deno APIs the Deno adapter uses, so that `tsc` (which has no Deno
 * types) can check code that imports it. `deno check` uses Deno's real types
 * and never reads this file.
 */
declare namespace Deno {
  interface Conn {
    read(p: Uint8Array): Promise<number | null>;
    write(p: Uint8Array): Promise<number>;
    close(): void;
    setNoDelay(noDelay?: boolean): void;
  }
  interface NetAddr {
    hostname: string;
    port: number;
  }
  interface TcpConn extends Conn {
    readonly localAddr: NetAddr;
    readonly remoteAddr: NetAddr;
    closeWrite(): Promise<void>;
  }
  interface TlsConn extends Conn {
    readonly localAddr: NetAddr;
    readonly remoteAddr: NetAddr;
    handshake(): Promise<unknown>;
  }
  // The server's listener (adapters/deno/listen.ts).
  interface Listener<T extends Conn> {
    accept(): Promise<T>;
    close(): void;
    readonly addr: NetAddr;
  }
  type TcpListener = Listener<TcpConn>;
  type TlsListener = Listener<TlsConn>;
  function listen(options: { hostname?: string; port?: number }): TcpListener;
  function listenTls(options: { hostname?: string; port?: number; cert: string; key: string }): TlsListener;
  function connect(options: { hostname?: string; port: number; signal?: AbortSignal }): Promise<TcpConn>;
  function connectTls(options: {
    hostname?: string;
    port: number;
    caCerts?: string[];
    cert?: string;
    key?: string;
    alpnProtocols?: string[];
  }): Promise<TlsConn>;
  function startTls(
    conn: TcpConn,
    options?: { hostname?: string; caCerts?: string[]; alpnProtocols?: string[] },
  ): Promise<TlsConn>;
  function unrefTimer(id: number): void;

  // The command line's host (adapters/deno/cli.ts).
  interface FsFileLike {
    write(p: Uint8Array): Promise<number>;
    isTerminal(): boolean;
  }
  const stdin: { isTerminal(): boolean };
  const stdout: FsFileLike;
  const stderr: FsFileLike;
  const args: string[];
  const version: { deno: string };
  const env: { get(name: string): string | undefined; toObject(): Record<string, string> };
  const permissions: { querySync(desc: { name: "env"; variable?: string }): { state: string } };
  function consoleSize(): { columns: number; rows: number };
  function readTextFile(path: string): Promise<string>;
  function addSignalListener(signal: string, handler: () => void): void;
  function removeSignalListener(signal: string, handler: () => void): void;
  function exit(code?: number): never;
  interface CommandStatus {
    success: boolean;
    code: number;
    signal: string | null;
  }
  interface ChildProcess {
    readonly status: Promise<CommandStatus>;
    kill(signal?: string): void;
  }
  class Command {
    constructor(
      command: string,
      options?: {
        args?: string[];
        stdin?: "inherit";
        stdout?: "inherit";
        stderr?: "inherit";
        env?: Record<string, string>;
        clearEnv?: boolean;
      },
    );
    spawn(): ChildProcess;
  }
  namespace errors {
    class NotFound extends Error {}
  }
}
