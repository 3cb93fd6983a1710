/**
 * The core's one connect routine, dial(), over a scripted fake runtime: its
 * primitives are steps the test settles by hand, so each phase of the
 * deadline, the abort, the error wording, the late socket and the ALPN
 * probe's one retry is driven exactly. Each test fails if the logic it names
 * is taken out of src/dial.ts (the adapters no longer have any of it).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { dial } from "../../src/dial.ts";
import { ConnectionError, InvalidArgumentError, LockError } from "../../src/errors.ts";
import {
  type ByteStream,
  type ConnectTarget,
  type DialRequest,
  type DialStep,
  PLAINTEXT_PROBE_ALPN,
  type Runtime,
} from "../../src/transport.ts";

/** A socket of the fake runtime: which step made it, and whether the core closed it. */
interface FakeSocket {
  readonly id: number;
  closed: boolean;
  /** Set once the TLS handshake step has given it. */
  secure: boolean;
}

/** One step the test settles: resolve with a socket, or reject with the runtime's own error. */
class ScriptedStep implements DialStep<FakeSocket> {
  readonly result: Promise<FakeSocket>;
  cancelled = false;
  resolve: (sock: FakeSocket) => void = () => {};
  reject: (err: unknown) => void = () => {};

  constructor(
    readonly kind: "connect" | "handshake",
    readonly request: DialRequest,
    /** The socket a handshake step runs on. */
    readonly on?: FakeSocket,
  ) {
    this.result = new Promise<FakeSocket>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
  }

  cancel(): void {
    this.cancelled = true;
  }
}

/** A scripted fake runtime: records every primitive call and lets the test settle each step. */
class ScriptedDialRuntime implements Runtime<FakeSocket> {
  readonly name = "fake";
  readonly steps: ScriptedStep[] = [];
  readonly sockets: FakeSocket[] = [];
  readonly streams: FakeSocket[] = [];
  probeAlpn = false;
  /** Thrown synchronously by connect(), as node:tls and Bun do for bad TLS material. */
  throwOnConnect: unknown;
  /** Set by a test for a runtime whose TLS starts on the TCP socket in a step of its own (Deno's `startTls`). */
  startTls?: (sock: FakeSocket, request: DialRequest) => DialStep<FakeSocket>;

  connect(request: DialRequest): DialStep<FakeSocket> {
    if (this.throwOnConnect !== undefined) throw this.throwOnConnect;
    const step = new ScriptedStep("connect", request);
    this.steps.push(step);
    return step;
  }

  handshake(sock: FakeSocket, request: DialRequest): DialStep<FakeSocket> {
    const step = new ScriptedStep("handshake", request, sock);
    this.steps.push(step);
    return step;
  }

  stream(sock: FakeSocket): ByteStream {
    this.streams.push(sock);
    return { start() {}, write() {}, close() {} };
  }

  close(sock: FakeSocket): void {
    sock.closed = true;
  }

  unrefTimer(): void {}

  /** A new socket, as a step would give it. */
  socket(): FakeSocket {
    const sock: FakeSocket = { id: this.sockets.length + 1, closed: false, secure: false };
    this.sockets.push(sock);
    return sock;
  }

  /** The step started last. */
  get last(): ScriptedStep {
    const step = this.steps[this.steps.length - 1];
    if (step === undefined) throw new Error("no step started");
    return step;
  }
}

const TLS = { ca: undefined, cert: undefined, key: undefined, serverName: undefined, verify: true };
const PLAIN: ConnectTarget = { host: "h", port: 1, timeoutMs: 100 };
const SECURE: ConnectTarget = { ...PLAIN, tls: TLS };

let rt: ScriptedDialRuntime;
beforeEach(() => {
  vi.useFakeTimers();
  rt = new ScriptedDialRuntime();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Let every settled promise's continuations run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** The error `p` rejects with. */
async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("resolved");
    },
    (e: unknown) => e,
  );
}

describe("dial(): the deadline", () => {
  it("times out in the TCP phase: worded as a connect timeout, the step cancelled, its signal aborted, no timer left", async () => {
    const p = failure(dial(rt, PLAIN));
    const step = rt.last;
    await vi.advanceTimersByTimeAsync(100);
    const err = await p;
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as LockError).code).toBe("TIMEOUT");
    expect((err as Error).message).toBe("connecting to h:1 timed out after 100 ms");
    expect(step.cancelled).toBe(true);
    expect(step.request.signal.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("times out in the TLS phase: worded as a handshake timeout, and the connected socket is closed", async () => {
    const p = failure(dial(rt, SECURE));
    const tcp = rt.socket();
    rt.last.resolve(tcp);
    await flush();
    expect(rt.last.kind).toBe("handshake");
    await vi.advanceTimersByTimeAsync(100);
    const err = await p;
    expect((err as LockError).code).toBe("TIMEOUT");
    expect((err as Error).message).toMatch(/^the TLS handshake with h:1 timed out after 100 ms \(if the server/);
    expect(tcp.closed).toBe(true);
    expect(rt.last.cancelled).toBe(true);
  });

  it("does not time out before the deadline, and clears its timer once connected", async () => {
    const p = dial(rt, PLAIN);
    await vi.advanceTimersByTimeAsync(99);
    const sock = rt.socket();
    rt.last.resolve(sock);
    await p;
    expect(rt.streams).toEqual([sock]);
    expect(sock.closed).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("dial(): the caller's abort", () => {
  it("an abort in the TCP phase rejects at once with its reason, cancels the step and stops the timer", async () => {
    const caller = new AbortController();
    const p = failure(dial(rt, { ...PLAIN, signal: caller.signal }));
    const step = rt.last;
    const reason = new LockError("closed by the test", "ABORTED");
    caller.abort(reason);
    expect(await p).toBe(reason);
    expect(step.cancelled).toBe(true);
    expect(step.request.signal.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("an abort in the TLS phase closes the connected socket", async () => {
    const caller = new AbortController();
    const p = failure(dial(rt, { ...SECURE, signal: caller.signal }));
    const tcp = rt.socket();
    rt.last.resolve(tcp);
    await flush();
    expect(rt.last.kind).toBe("handshake");
    caller.abort();
    const err = await p;
    expect((err as LockError).code).toBe("ABORTED");
    expect(tcp.closed).toBe(true);
  });

  it("an already aborted signal starts nothing", async () => {
    const caller = new AbortController();
    caller.abort();
    expect(((await failure(dial(rt, { ...PLAIN, signal: caller.signal }))) as LockError).code).toBe("ABORTED");
    expect(rt.steps).toEqual([]);
  });

  it("an abort after the stream was handed over changes nothing", async () => {
    const caller = new AbortController();
    const p = dial(rt, { ...PLAIN, signal: caller.signal });
    const sock = rt.socket();
    rt.last.resolve(sock);
    await p;
    caller.abort();
    expect(sock.closed).toBe(false);
  });
});

describe("dial(): a socket that opens after the attempt ended", () => {
  it("a TCP connect that completes after the deadline is closed when it comes", async () => {
    const p = failure(dial(rt, PLAIN));
    const step = rt.last;
    await vi.advanceTimersByTimeAsync(100);
    await p;
    const late = rt.socket();
    step.resolve(late);
    await flush();
    expect(late.closed).toBe(true);
    expect(rt.streams).toEqual([]);
  });

  it("a handshake that completes after an abort is closed when it comes", async () => {
    const caller = new AbortController();
    const p = failure(dial(rt, { ...SECURE, signal: caller.signal }));
    rt.last.resolve(rt.socket());
    await flush();
    const shake = rt.last;
    caller.abort();
    await p;
    const late: FakeSocket = { id: 99, closed: false, secure: true };
    shake.resolve(late);
    await flush();
    expect(late.closed).toBe(true);
    expect(rt.streams).toEqual([]);
  });

  it("a socket given in the very microtask the attempt is aborted is closed", async () => {
    for (let depth = 0; depth < 12; depth++) {
      rt = new ScriptedDialRuntime();
      const caller = new AbortController();
      const p = dial(rt, { ...PLAIN, signal: caller.signal }).then(
        () => "handed over",
        (e: unknown) => String(e),
      );
      const sock = rt.socket();
      rt.last.resolve(sock);
      for (let i = 0; i < depth; i++) await Promise.resolve();
      caller.abort();
      const outcome = await p;
      await flush();
      const handedOver = rt.streams.includes(sock);
      expect(handedOver, `depth ${depth}: ${outcome}`).toBe(outcome === "handed over");
      // Either it was handed over before the abort, or it is closed: never neither.
      expect(handedOver !== sock.closed, `depth ${depth}: ${outcome}`).toBe(true);
    }
  });
});

describe("dial(): errors are worded once, for every runtime", () => {
  it("a failed TCP connect is a ConnectionError naming the server, with the runtime's error as cause", async () => {
    const p = failure(dial(rt, PLAIN));
    const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    rt.last.reject(cause);
    const err = await p;
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as Error).message).toBe("cannot connect to h:1: connect ECONNREFUSED 127.0.0.1:1");
    expect((err as Error).cause).toBe(cause);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a failed TLS handshake is worded as one, with the hint, and closes the socket", async () => {
    const p = failure(dial(rt, SECURE));
    const tcp = rt.socket();
    rt.last.resolve(tcp);
    await flush();
    rt.last.reject(new Error("self-signed certificate"));
    const err = await p;
    expect((err as Error).message).toBe(
      "TLS handshake with h:1 failed: self-signed certificate (certificate verification failed: check tls.ca and tls.serverName)",
    );
    expect(tcp.closed).toBe(true);
  });

  it("a TCP failure of a TLS connection is still a connect failure, not a handshake one", async () => {
    const p = failure(dial(rt, SECURE));
    rt.last.reject(new Error("connect ECONNREFUSED"));
    expect(((await p) as Error).message).toBe("cannot connect to h:1: connect ECONNREFUSED");
  });

  it("TLS material the runtime rejects synchronously is an InvalidArgumentError naming the runtime", async () => {
    rt.throwOnConnect = new Error("bad PEM");
    const err = await failure(dial(rt, SECURE));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe("Fake rejected the tls options: bad PEM");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a synchronous throw without TLS is the connect refused, not the tls options", async () => {
    const cause = new Error("invalid hostname");
    rt.throwOnConnect = cause;
    const err = await failure(dial(rt, PLAIN));
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as LockError).code).toBe("CONNECTION");
    expect((err as Error).message).toBe("Fake refused to connect to h:1: invalid hostname");
    expect((err as Error).cause).toBe(cause);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a LockError of the adapter's own is passed on as it is", async () => {
    const own = new InvalidArgumentError("tls.insecureSkipVerify is not supported on Fake");
    rt.throwOnConnect = own;
    expect(await failure(dial(rt, SECURE))).toBe(own);
  });

  it("an IPv6 address is named in brackets", async () => {
    const p = failure(dial(rt, { ...PLAIN, host: "::1" }));
    rt.last.reject(new Error("refused"));
    expect(((await p) as Error).message).toBe("cannot connect to [::1]:1: refused");
  });
});

describe("dial(): the plaintext probe (a runtime that needs it says so)", () => {
  it("offers the probe only to a runtime that asks, and only with TLS", async () => {
    rt.probeAlpn = true;
    void dial(rt, PLAIN).catch(() => {});
    expect(rt.last.request.alpn).toBeUndefined();
    void dial(rt, SECURE).catch(() => {});
    expect(rt.last.request.alpn).toEqual([PLAINTEXT_PROBE_ALPN]);
    rt.probeAlpn = false;
    void dial(rt, SECURE).catch(() => {});
    expect(rt.last.request.alpn).toBeUndefined();
    await vi.advanceTimersByTimeAsync(100);
  });

  it("a refusal of the probe (no_application_protocol) shakes hands once more without it, closing the first socket", async () => {
    rt.probeAlpn = true;
    const p = dial(rt, SECURE);
    const first = rt.socket();
    rt.last.resolve(first);
    await flush();
    rt.last.reject(new Error("received fatal alert: NoApplicationProtocol"));
    await flush();
    expect(first.closed).toBe(true);
    expect(rt.last.kind).toBe("connect");
    expect(rt.last.request.alpn).toBeUndefined();
    const second = rt.socket();
    rt.last.resolve(second);
    await flush();
    rt.last.resolve(second);
    await p;
    expect(rt.streams).toEqual([second]);
  });

  it("retries once only, within the same deadline", async () => {
    rt.probeAlpn = true;
    const p = failure(dial(rt, SECURE));
    rt.last.resolve(rt.socket());
    await flush();
    await vi.advanceTimersByTimeAsync(60);
    rt.last.reject(new Error("NoApplicationProtocol"));
    await flush();
    rt.last.resolve(rt.socket());
    await flush();
    rt.last.reject(new Error("NoApplicationProtocol"));
    const err = await p;
    expect((err as Error).message).toMatch(/^TLS handshake with h:1 failed: NoApplicationProtocol/);
    expect(rt.steps.filter((s) => s.kind === "connect")).toHaveLength(2);
    // The same deadline: 40 ms were left for the retry.
    const again = failure(dial(rt, SECURE));
    rt.last.resolve(rt.socket());
    await flush();
    await vi.advanceTimersByTimeAsync(60);
    rt.last.reject(new Error("NoApplicationProtocol"));
    await flush();
    await vi.advanceTimersByTimeAsync(40);
    expect(((await again) as LockError).code).toBe("TIMEOUT");
  });

  it("the retry's TCP phase is the connect phase again: a timeout there is worded as a connect timeout", async () => {
    rt.probeAlpn = true;
    const p = failure(dial(rt, SECURE));
    rt.last.resolve(rt.socket());
    await flush();
    rt.last.reject(new Error("received fatal alert: NoApplicationProtocol"));
    await flush();
    expect(rt.last.kind).toBe("connect");
    await vi.advanceTimersByTimeAsync(100);
    expect(((await p) as Error).message).toBe("connecting to h:1 timed out after 100 ms");
  });

  it("a runtime that does not ask for the probe does not retry", async () => {
    const p = failure(dial(rt, SECURE));
    rt.last.resolve(rt.socket());
    await flush();
    rt.last.reject(new Error("NoApplicationProtocol"));
    expect(((await p) as Error).message).toMatch(/^TLS handshake with h:1 failed/);
    expect(rt.steps.filter((s) => s.kind === "connect")).toHaveLength(1);
  });
});

describe("dial(): a runtime with startTls (TLS started on the TCP socket, then the handshake)", () => {
  it("starts TLS on the connected socket, and the handshake runs on the socket startTls gave", async () => {
    const started: FakeSocket[] = [];
    const tlsSock: FakeSocket = { id: 99, closed: false, secure: false };
    rt.startTls = (sock) => {
      started.push(sock);
      return { result: Promise.resolve(tlsSock) };
    };
    const p = dial(rt, SECURE);
    const tcp = rt.socket();
    rt.last.resolve(tcp);
    await flush();
    expect(started).toEqual([tcp]);
    expect(rt.last.kind).toBe("handshake");
    expect(rt.last.on).toBe(tlsSock);
    rt.last.resolve(tlsSock);
    await p;
    expect(rt.streams).toEqual([tlsSock]);
    expect(tcp.closed).toBe(false);
  });

  it("is not used without TLS", async () => {
    let calls = 0;
    rt.startTls = (sock) => {
      calls++;
      return { result: Promise.resolve(sock) };
    };
    const p = dial(rt, PLAIN);
    const tcp = rt.socket();
    rt.last.resolve(tcp);
    await p;
    expect(calls).toBe(0);
    expect(rt.streams).toEqual([tcp]);
  });
});
