import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Connection } from "../../src/connection.ts";
import { InvalidArgumentError, LockError } from "../../src/errors.ts";
import {
  encodeAcquire,
  encodeEnqueue,
  encodeRelease,
  encodeRenew,
  encodeWait,
  type Kind,
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

describe("property: replies", () => {
  it("any byte stream, split anywhere, yields the same lines or a typed error; parsers never throw untyped", () => {
    fc.assert(
      fc.property(withGarbage, ([[bytes, cuts, max], tail]) => {
        const all = new Uint8Array(bytes.length + tail.length);
        all.set(bytes);
        all.set(tail, bytes.length);
        const run = (chunks: Uint8Array[]): { lines: string[]; error?: unknown } => {
          const d = new LineDecoder(max);
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
        const stream = await rt.connect({ host: "h", port: 1, timeoutMs: 1000 });
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
