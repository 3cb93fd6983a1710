import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Connection } from "../../src/connection.ts";
import { dial } from "../../src/dial.ts";
import { InvalidArgumentError, LockError, ServerError } from "../../src/errors.ts";
import {
  encodeAcquire,
  encodeEnqueue,
  encodeRelease,
  encodeRenew,
  encodeWait,
  type Kind,
  type Latin1Decoder,
  LineDecoder,
  parseEnqueueReply,
  parseGrantReply,
  parseOkReply,
  parseRenewReply,
  parseStatsReply,
} from "../../src/protocol.ts";
import { useScriptedRuntime } from "../support/scripted-peer.ts";

const utf8 = new TextEncoder();
/** What the server refuses in a key; every other character is sent as is. */
const REFUSED_IN_KEY = /[ \t\r\n]/;
const LONE_SURROGATE = /\p{Cs}/u;

/** Strings biased towards the characters that matter: controls, spaces, newlines, multi-byte. */
const nasty = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 300 }),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({
    unit: fc.constantFrom("a", " ", "\n", "\r", "\t", "\u0000", "é", "🔒", "\u2028", "\ud800"),
    maxLength: 140,
  }),
);
const number = fc.oneof(
  fc.integer({ min: -5, max: 3_000_000 }),
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 0.5),
);
const maybe = fc.option(number, { nil: undefined });
const kind = fc.constantFrom<Kind>("lock", "semaphore");

describe("property: requests", () => {
  it("every request is exactly three well-formed lines, or is rejected before encoding", () => {
    fc.assert(
      fc.property(kind, fc.nat(4), nasty, nasty, number, maybe, maybe, (k, op, key, token, t, lease, limit) => {
        let bytes: string;
        try {
          bytes = [
            () => encodeAcquire(k, key, t, lease, limit),
            () => encodeEnqueue(k, key, lease, limit),
            () => encodeWait(k, key, t),
            () => encodeRenew(k, key, token, lease),
            () => encodeRelease(k, key, token),
          ][op]?.() as string;
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidArgumentError);
          return;
        }
        // What goes on the wire is the text's UTF-8, which must decode back to the same text.
        const text = new TextDecoder("utf-8", { fatal: true }).decode(new TextEncoder().encode(bytes));
        const lines = text.split("\n");
        expect(lines.length).toBe(4);
        expect(lines[3]).toBe("");
        const [cmd, sentKey, arg] = lines as [string, string, string];
        expect(cmd).toMatch(/^s?[lewnr]$/);
        expect(sentKey).toBe(key);
        expect(sentKey.length).toBeGreaterThan(0);
        expect(REFUSED_IN_KEY.test(sentKey)).toBe(false);
        expect(LONE_SURROGATE.test(key)).toBe(false);
        expect(arg).toMatch(/^([\x21-\x7e]+( [0-9]+)*)?$/);
        for (const l of lines) expect(utf8.encode(l).length).toBeLessThanOrEqual(256);
      }),
      { numRuns: 3000 },
    );
  });
});

const PARSERS = [
  (l: string) => parseGrantReply(l, "l"),
  (l: string) => parseEnqueueReply(l, "e"),
  (l: string) => parseRenewReply(l, "n"),
  (l: string) => parseOkReply(l, "r"),
  (l: string) => parseStatsReply(l),
];

/** Reply-shaped fragments mixed with garbage bytes. */
const replyStream = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        "ok\n",
        "ok 0123456789abcdef0123456789abcdef 33\n",
        "ok 0123456789abcdef0123456789abcdef 33 42\r\n",
        "acquired 0123456789abcdef0123456789abcdef 5\n",
        "queued\n",
        "timeout\n",
        "ok 30\n",
        "error_max_locks\n",
        "error_something_new\n",
        'ok {"connections":1,"locks":null,"semaphores":[],"idle_locks":[],"idle_semaphores":[]}\n',
        "ok 🔒é\n",
      ),
      fc.string({ unit: "binary", maxLength: 40 }),
    ),
    { maxLength: 12 },
  )
  .map((parts) => utf8.encode(parts.join("")))
  .chain((bytes) =>
    fc.tuple(
      fc.constant(bytes),
      fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, bytes.length) }), { maxLength: 8 }),
    ),
  )
  .chain(([bytes, cuts]) =>
    fc.tuple(
      fc.constant(bytes),
      fc.constant(cuts),
      fc.oneof(fc.constant(bytes.length + 1), fc.integer({ min: 8, max: 128 })),
    ),
  );
// Also allow an extra random tail of arbitrary bytes.
const withGarbage = fc.tuple(replyStream, fc.uint8Array({ maxLength: 30 }));

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...cuts].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    out.push(bytes.slice(at, p));
    at = p;
  }
  out.push(bytes.slice(at));
  return out;
}

/** A portable stand-in for a Node Buffer's Latin-1 decoding. */
const latin1: Latin1Decoder = (bytes, start, end) => String.fromCharCode(...bytes.subarray(start, end));

// The reply grammar written as patterns: the specification the index-scanning parsers must agree with.
const TOKEN = "[\\x21-\\x7e]{1,256}";
const UINT = "(0|[1-9][0-9]{0,9})";
const GRANT = new RegExp(`^ok (${TOKEN}) ${UINT}(?: (${TOKEN}))?$`);
const ACQUIRED = new RegExp(`^acquired (${TOKEN}) ${UINT}(?: (${TOKEN}))?$`);
const RENEWED = new RegExp(`^ok ${UINT}(?: (${TOKEN}))?$`);

type Outcome = { value: unknown } | { error: string };
function outcome(f: () => unknown): Outcome {
  try {
    return { value: f() };
  } catch (err) {
    return { error: err instanceof ServerError ? "ServerError" : (err as Error).constructor.name };
  }
}
function grantOf(m: RegExpExecArray | null): unknown {
  if (m === null || Number(m[2]) < 1) return undefined;
  return m[3] === undefined ? { token: m[1], lease: Number(m[2]) } : { token: m[1], lease: Number(m[2]), fence: m[3] };
}
function expected(line: string, parser: "grant" | "enqueue" | "renew"): Outcome {
  const status = line.split(" ")[0] as string;
  if (status.startsWith("error")) return { error: "ServerError" };
  if (parser === "grant") {
    if (line === "timeout") return { value: null };
    const g = grantOf(GRANT.exec(line));
    return g === undefined ? { error: "ProtocolError" } : { value: g };
  }
  if (parser === "enqueue") {
    if (line === "queued") return { value: { status: "queued", token: null, lease: null } };
    const g = grantOf(ACQUIRED.exec(line));
    return g === undefined ? { error: "ProtocolError" } : { value: { status: "acquired", ...(g as object) } };
  }
  if (line === "ok") return { value: {} };
  const m = RENEWED.exec(line);
  if (m === null) return { error: "ProtocolError" };
  return { value: m[2] === undefined ? { lease: Number(m[1]) } : { lease: Number(m[1]), fence: m[2] } };
}

describe("property: reply grammar", () => {
  const word = fc.constantFrom("ok", "acquired", "queued", "timeout", "error", "error_auth", "0", "00", "1", "33");
  const piece = fc.oneof(word, fc.string({ unit: fc.constantFrom("a", "Z", "9", "0", "~", "!", "é", "\u0000", " ") }));
  const replyLine = fc.oneof(
    fc.array(piece, { maxLength: 6 }).map((ps) => ps.join(" ")),
    fc.tuple(fc.constantFrom("ok ", "acquired "), fc.string({ maxLength: 300 })).map(([a, b]) => a + b),
  );

  it("grant, enqueue and renew replies parse exactly as the grammar says", () => {
    fc.assert(
      fc.property(replyLine, (line) => {
        expect(outcome(() => parseGrantReply(line, "l"))).toEqual(expected(line, "grant"));
        expect(outcome(() => parseEnqueueReply(line, "e"))).toEqual(expected(line, "enqueue"));
        expect(outcome(() => parseRenewReply(line, "n"))).toEqual(expected(line, "renew"));
      }),
      { numRuns: 5000 },
    );
  });

  it.each([
    "ok tok 33",
    "ok tok 33 7",
    "ok tok 0",
    "ok tok 033",
    "ok tok 12345678901",
    "ok tok 4294967296",
    `ok ${"t".repeat(256)} 5`,
    `ok ${"t".repeat(257)} 5`,
    "ok tok 5 ",
    "ok  tok 5",
    "ok tok 5 f g",
    "acquired tok 5 f",
    "ok 5",
    "ok 5 f",
    "ok",
  ])("agrees with the grammar on %j", (line) => {
    expect(outcome(() => parseGrantReply(line, "l"))).toEqual(expected(line, "grant"));
    expect(outcome(() => parseEnqueueReply(line, "e"))).toEqual(expected(line, "enqueue"));
    expect(outcome(() => parseRenewReply(line, "n"))).toEqual(expected(line, "renew"));
  });
});

describe("property: replies", () => {
  it("any byte stream, split anywhere, yields the same lines or a typed error; parsers never throw untyped", () => {
    fc.assert(
      fc.property(withGarbage, ([[bytes, cuts, max], tail]) => {
        const all = new Uint8Array(bytes.length + tail.length);
        all.set(bytes);
        all.set(tail, bytes.length);
        const run = (chunks: Uint8Array[], fast?: Latin1Decoder): { lines: string[]; error?: unknown } => {
          const d = new LineDecoder(max, fast);
          const lines: string[] = [];
          try {
            for (const c of chunks) d.push(c, (l) => lines.push(l));
            return { lines };
          } catch (error) {
            return { lines, error };
          }
        };
        const whole = run([all]);
        const pieces = run(split(all, cuts));
        // A stream's fast Latin-1 decoder changes nothing: same lines, same failures.
        const fast = run(split(all, cuts), latin1);
        expect(fast).toEqual(pieces);
        expect(pieces.error === undefined).toBe(whole.error === undefined);
        if (pieces.error !== undefined) expect(pieces.error).toBeInstanceOf(LockError);
        if (whole.error === undefined) expect(pieces.lines).toEqual(whole.lines);
        for (const line of whole.lines) {
          for (const parse of PARSERS) {
            try {
              const v: unknown = parse(line);
              const tok = v !== null && typeof v === "object" && "token" in v ? v.token : undefined;
              if (tok !== undefined && tok !== null) {
                expect(typeof tok).toBe("string");
                expect((tok as string).length).toBeGreaterThan(0);
              }
            } catch (err) {
              expect(err).toBeInstanceOf(LockError);
            }
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("on a connection, every pending request settles with a value or a LockError", async () => {
    await fc.assert(
      fc.asyncProperty(withGarbage, fc.integer({ min: 1, max: 5 }), async ([[bytes, cuts], tail], n) => {
        const rt = useScriptedRuntime();
        const stream = await dial(rt, { host: "h", port: 1, timeoutMs: 1000 });
        const conn = new Connection(stream);
        const peer = rt.peers[0];
        if (peer === undefined) throw new Error("no peer");
        const results = Array.from({ length: n }, (_, i) =>
          conn.request(encodeWait("lock", "k", 1), "w", PARSERS[i % PARSERS.length] as (l: string) => unknown, 60_000),
        );
        for (const c of split(bytes, cuts)) peer.send(c);
        peer.send(tail);
        peer.hangUp();
        const settled = await Promise.allSettled(results);
        for (const s of settled) if (s.status === "rejected") expect(s.reason).toBeInstanceOf(LockError);
        expect(conn.closed).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
