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
  interface TcpConn extends Conn {}
  interface TlsConn extends Conn {
    handshake(): Promise<unknown>;
  }
  function connect(options: { hostname?: string; port: number; signal?: AbortSignal }): Promise<TcpConn>;
  function connectTls(options: {
    hostname?: string;
    port: number;
    caCerts?: string[];
    cert?: string;
    key?: string;
  }): Promise<TlsConn>;
  function startTls(conn: TcpConn, options?: { hostname?: string; caCerts?: string[] }): Promise<TlsConn>;
  function unrefTimer(id: number): void;
}
