// The raw-socket floor of `npm run bench`: the least a client can do to talk
// to dflockd, written straight on each runtime's own sockets (node:net on
// Node, Bun.connect on Bun, Deno.connect on Deno), without the package.
// Node has two floors: one that reads through 'data' events, and one that
// reads with net.connect's `onread` option (one reused buffer, no Buffer per
// read), the way the package's Node adapter reads; bench/run.ts compares
// Node's client with whichever of the two is faster.
//
// openRaw(host, port) gives a connection with one method that matters:
// request(text) writes a whole request (three lines, each ending in "\n") and
// resolves with the next reply line (without its "\n" or a trailing "\r").
// Requests may be pipelined: replies are matched to requests in order. A
// reply that arrives with no request waiting (say, the server's read-timeout
// `error`) is kept for the next request. When the connection closes, every
// pending and later request rejects.
//
// Replies are ASCII, so bytes are decoded as latin1 (no UTF-8 work).

/** Which runtime runs this file: "node", "bun" or "deno". */
export const RUNTIME = globalThis.Deno !== undefined ? "deno" : globalThis.Bun !== undefined ? "bun" : "node";

/** Splits incoming text into lines and hands them to waiting requests in order. */
class LineQueue {
  #buf = "";
  #waiting = [];
  #early = [];
  #failure = undefined;

  /** Feed decoded text from the socket. */
  feed(text) {
    this.#buf += text;
    for (let i = this.#buf.indexOf("\n"); i >= 0; i = this.#buf.indexOf("\n")) {
      let line = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      const w = this.#waiting.shift();
      if (w) w.resolve(line);
      else this.#early.push(line);
    }
  }

  /** The next reply line. */
  next() {
    if (this.#early.length > 0) return Promise.resolve(this.#early.shift());
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /** The connection is gone: fail everything waiting and everything later. */
  fail(err) {
    if (this.#failure) return;
    this.#failure = err;
    for (const w of this.#waiting.splice(0)) w.reject(err);
  }
}

const closedError = () => new Error("raw connection closed by the server");

/** One read buffer for every `onread` connection: each read is decoded before the next can land. */
let onreadBuffer;

/**
 * node:net: with `onread`, the socket reads into a buffer of ours and calls
 * back with the byte count (as the client does); else through `data` events.
 */
async function openNode(host, port, onread) {
  const net = await import("node:net");
  const q = new LineQueue();
  const options = { host, port };
  if (onread) {
    onreadBuffer ??= Buffer.allocUnsafe(64 * 1024);
    options.onread = {
      buffer: onreadBuffer,
      callback(n, buf) {
        q.feed(buf.latin1Slice(0, n));
        return true;
      },
    };
  }
  const sock = net.connect(options);
  sock.setNoDelay(true);
  await new Promise((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  if (!onread) sock.on("data", (b) => q.feed(b.toString("latin1")));
  sock.on("error", (e) => q.fail(e));
  sock.on("close", () => q.fail(closedError()));
  return {
    request(text) {
      sock.write(text, "latin1");
      return q.next();
    },
    close: () => sock.destroy(),
  };
}

/** Bun.connect; a partial write keeps the rest until `drain`. */
async function openBun(host, port) {
  const q = new LineQueue();
  let pending = "";
  const sock = await Bun.connect({
    hostname: host,
    port,
    socket: {
      data: (_s, b) => q.feed(b.toString("latin1")),
      drain(s) {
        if (pending === "") return;
        const n = s.write(pending);
        pending = pending.slice(Math.max(0, n));
      },
      close: () => q.fail(closedError()),
      error: (_s, e) => q.fail(e),
    },
  });
  sock.setNoDelay?.(true);
  return {
    request(text) {
      if (pending !== "") pending += text;
      else {
        const n = sock.write(text);
        if (n < text.length) pending = text.slice(Math.max(0, n));
      }
      return q.next();
    },
    close: () => sock.end(),
  };
}

/** Deno.connect: a read loop into one buffer; writes chained and repeated until complete. */
async function openDeno(host, port) {
  const q = new LineQueue();
  const conn = await Deno.connect({ hostname: host, port, transport: "tcp" });
  conn.setNoDelay(true);
  const decoder = new TextDecoder("latin1");
  const encoder = new TextEncoder();
  let closed = false;
  (async () => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        q.feed(decoder.decode(buf.subarray(0, n)));
      }
      q.fail(closedError());
    } catch (e) {
      q.fail(e);
    }
  })();
  let writing = Promise.resolve();
  const writeAll = async (bytes) => {
    for (let off = 0; off < bytes.length; ) off += await conn.write(bytes.subarray(off));
  };
  return {
    request(text) {
      const bytes = encoder.encode(text);
      writing = writing.then(() => writeAll(bytes)).catch((e) => q.fail(e));
      return q.next();
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // Already closed by the peer.
      }
    },
  };
}

/**
 * Open a raw TCP connection to dflockd at `host:port` with this runtime's
 * own sockets. Returns `{ request(text): Promise<string>, close() }`.
 * `onread` (Node only; ignored elsewhere): read with net.connect's `onread`
 * option instead of 'data' events.
 */
export function openRaw(host, port, onread = false) {
  if (RUNTIME === "deno") return openDeno(host, port);
  if (RUNTIME === "bun") return openBun(host, port);
  return openNode(host, port, onread);
}

/** `l` then `r` on `conn` for `key`: one operation of the floor. Throws on any reply but `ok`. */
export async function rawAcquireRelease(conn, key) {
  const token = await rawAcquire(conn, key);
  await rawRelease(conn, key, token);
}

/** `l <key> 10 33` (blocks up to 10 s, lease 33 s); resolves with the token. */
export async function rawAcquire(conn, key) {
  return tokenOf(await conn.request(`l\n${key}\n10 33\n`), key);
}

/** Sends `r <key> <token>`; resolves when the server says `ok`. */
export async function rawRelease(conn, key, token) {
  const line = await conn.request(`r\n${key}\n${token}\n`);
  if (line !== "ok") throw new Error(`release ${key}: server replied ${JSON.stringify(line)}`);
}

/** The token of an `ok <token> <lease>[ <fence>]` reply; throws on anything else. */
export function tokenOf(line, key) {
  if (!line.startsWith("ok ")) throw new Error(`acquire ${key}: server replied ${JSON.stringify(line)}`);
  const end = line.indexOf(" ", 3);
  return end < 0 ? line.slice(3) : line.slice(3, end);
}
