/**
 * A scripted peer for unit tests of the core: an in-memory Runtime whose
 * "server side" is driven by the test. It is not a dflockd server and
 * implements no protocol logic; each test says exactly which bytes come back.
 */
import { ConnectionError } from "../../src/errors.ts";
import {
  type ByteStream,
  type DialRequest,
  type DialStep,
  type Runtime,
  replaceRuntime,
  type StreamHandlers,
} from "../../src/transport.ts";

const decoder = new TextDecoder();

/** The server end of one in-memory connection. */
export class PeerEnd {
  readonly target: DialRequest;
  /** Everything the client wrote, decoded. */
  received = "";
  closedByClient = false;
  /** Whether the client's stream keeps the process alive (its last ref()/unref()). */
  refd = false;
  hungUp = false;
  /** Called once for each complete request, in order. */
  onRequest: ((request: string[]) => void) | undefined;
  #seen = 0;
  #handlers: StreamHandlers | undefined;
  #waiters: Array<() => void> = [];

  constructor(target: DialRequest) {
    this.target = target;
  }

  /** @internal */
  attach(h: StreamHandlers): void {
    this.#handlers = h;
  }

  /** @internal */
  onWrite(bytes: Uint8Array): void {
    this.received += decoder.decode(bytes);
    const all = this.requests;
    while (this.#seen < all.length) {
      const request = all[this.#seen] as string[];
      this.#seen++;
      this.onRequest?.(request);
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Complete requests received so far, as [cmd, key, arg] triples. */
  get requests(): string[][] {
    const lines = this.received.split("\n");
    lines.pop();
    const out: string[][] = [];
    for (let i = 0; i + 2 < lines.length; i += 3) out.push(lines.slice(i, i + 3));
    return out;
  }

  /** Resolve once at least `n` complete requests have arrived. */
  async nextRequest(n = this.requests.length + 1): Promise<string[]> {
    while (this.requests.length < n) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    return this.requests[n - 1] as string[];
  }

  /** Send raw bytes (or a string) to the client. */
  send(data: string | Uint8Array): void {
    this.#handlers?.data(typeof data === "string" ? new TextEncoder().encode(data) : data);
  }

  /** Close from the server side. */
  hangUp(error?: unknown): void {
    this.hungUp = true;
    this.#handlers?.end(error);
  }
}

class MemoryStream implements ByteStream {
  readonly #peer: PeerEnd;
  #closed = false;
  #handlers: StreamHandlers | undefined;

  constructor(peer: PeerEnd) {
    this.#peer = peer;
  }

  start(h: StreamHandlers): void {
    const wrapped: StreamHandlers = {
      data: (c) => {
        if (!this.#closed) h.data(c);
      },
      end: (e) => {
        if (this.#closed) return;
        this.#closed = true;
        h.end(e);
      },
    };
    this.#handlers = wrapped;
    this.#peer.attach(wrapped);
  }

  write(bytes: Uint8Array): void {
    if (!this.#closed) this.#peer.onWrite(bytes);
  }

  ref(): void {
    this.#peer.refd = true;
  }

  unref(): void {
    this.#peer.refd = false;
  }

  close(): void {
    if (this.#closed) return;
    this.#peer.closedByClient = true;
    this.#handlers?.end();
  }
}

/** An in-memory runtime: every connect() yields a new {@link PeerEnd}. */
export class ScriptedRuntime implements Runtime<PeerEnd> {
  readonly name = "scripted";
  readonly peers: PeerEnd[] = [];
  refuse = false;
  /** While set, connects wait for it (and `refuse` is read when it settles): a connect in progress. */
  gate: Promise<void> | undefined;
  #waiters: Array<() => void> = [];

  /** Called with each new peer as it connects. */
  onPeer: ((peer: PeerEnd) => void) | undefined;

  connect(target: DialRequest): DialStep<PeerEnd> {
    const gate = this.gate;
    if (gate !== undefined) {
      return { result: gate.then(() => this.#connectNow(target)) };
    }
    return { result: this.#connectNow(target) };
  }

  #connectNow(target: DialRequest): Promise<PeerEnd> {
    if (this.refuse) {
      const refused = new ConnectionError(`cannot connect to ${target.host}:${target.port}: refused`, {
        cause: new Error("ECONNREFUSED"),
      });
      return Promise.reject(refused);
    }
    const peer = new PeerEnd(target);
    this.peers.push(peer);
    this.onPeer?.(peer);
    for (const w of this.#waiters.splice(0)) w();
    return Promise.resolve(peer);
  }

  stream(peer: PeerEnd): ByteStream {
    return new MemoryStream(peer);
  }

  /** A peer given up before it became a stream (the core's dial() closes it). */
  close(peer: PeerEnd): void {
    peer.closedByClient = true;
  }

  unrefTimer(): void {}

  #claimed = 0;

  /** Resolve with the next peer not yet returned by this method, once it has connected. */
  async peer(): Promise<PeerEnd> {
    const n = ++this.#claimed;
    while (this.peers.length < n) await new Promise<void>((r) => this.#waiters.push(r));
    return this.peers[n - 1] as PeerEnd;
  }
}

/** Install a fresh scripted runtime and return it. */
export function useScriptedRuntime(): ScriptedRuntime {
  const rt = new ScriptedRuntime();
  replaceRuntime(rt);
  return rt;
}

/** A plausible 32-hex-character token. */
export function token(n = 1): string {
  return n.toString(16).padStart(32, "0");
}
