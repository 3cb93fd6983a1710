/**
 * Keys and secrets as the server sees them (issue 8), messages that show what a
 * value really holds, and the wording of a connection the server closes early.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AcquireTimeoutError, InvalidArgumentError, type LockError, LockLostError, quote } from "../../src/errors.ts";
import { acquire, enqueue, release, renew, semAcquire, semEnqueue, waitForLock } from "../../src/lowlevel.ts";
import { connect } from "../../src/open.ts";
import { DistributedLock, DistributedSemaphore } from "../../src/primitive.ts";
import { encodeAcquire, encodeWait } from "../../src/protocol.ts";
import { checkHost, checkKey, checkSecret, checkToken } from "../../src/validate.ts";
import { type ScriptedRuntime, token, useScriptedRuntime } from "../support/scripted-peer.ts";

let rt: ScriptedRuntime;
beforeEach(() => {
  rt = useScriptedRuntime();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const utf8 = (s: string): number[] => [...new TextEncoder().encode(s)];
const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as Error).message;
  }
  throw new Error("expected a throw");
};

/**
 * Characters real dflockd stores byte for byte in a key, and the Go and Python clients send: NUL, SOH, VT,
 * FF, ESC, DEL, NEL, NBSP, EN SPACE, NNBSP, IDEOGRAPHIC SPACE, BOM, LS, PS, ZWJ, "_", and an emoji.
 */
const SERVER_KEYS = Array.from(
  "\u0000\u0001\u000b\u000c\u001b\u007f\u0085\u00a0\u2002\u202f\u3000\ufeff\u2028\u2029\u200d_🔒",
);

describe("keys: exactly what the server accepts", () => {
  it.each(
    SERVER_KEYS.flatMap((c) => [
      [quote(c), c],
      [quote(`a${c}b`), `a${c}b`],
    ]),
  )("accepts the key %s and sends it byte for byte", (_shown, key) => {
    expect(checkKey(key)).toBe(key);
    expect(utf8(encodeWait("lock", key, 1))).toEqual([...utf8("w\n"), ...utf8(key), ...utf8("\n1\n")]);
  });

  it("encodes the awkward ones as the bytes the other clients send", () => {
    const line = (key: string): number[] => utf8(encodeWait("lock", key, 1)).slice(2, -3);
    expect(line("\u0000")).toEqual([0x00]);
    expect(line("\u00a0")).toEqual([0xc2, 0xa0]);
    expect(line("\ufeff")).toEqual([0xef, 0xbb, 0xbf]);
    expect(line("\u2028")).toEqual([0xe2, 0x80, 0xa8]);
  });

  it("refuses, of every BMP character, only space, tab, CR and LF", () => {
    const refused: number[] = [];
    for (let cp = 0; cp <= 0xffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      try {
        checkKey(`a${String.fromCharCode(cp)}b`);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidArgumentError);
        refused.push(cp);
      }
    }
    expect(refused).toEqual([0x09, 0x0a, 0x0d, 0x20]);
    for (const cp of [0x10000, 0x1f512, 0xe0001, 0xe007f, 0xf0000, 0x10ffff]) {
      expect(checkKey(String.fromCodePoint(cp))).toBe(String.fromCodePoint(cp));
    }
  });

  it.each([
    ["empty", "", /must not be empty/],
    ["space", "a b", /a space/],
    ["tab", "a\tb", /a tab/],
    ["CR", "a\rb", /carriage return/],
    ["LF", "a\nl\nk", /line feed/],
    ["lone high surrogate", "a\ud800b", /lone surrogate \(U\+D800\)/],
    ["lone low surrogate", "a\udc00", /lone surrogate \(U\+DC00\)/],
    ["reversed pair", "\ude00\ud83d", /lone surrogate/],
    ["257 bytes", "x".repeat(257), /257 UTF-8 bytes/],
    ["257 bytes of 3-byte characters", `${"\u3000".repeat(85)}xx`, /257 UTF-8 bytes/],
  ])("refuses a key with %s", (_name, key, why) => {
    expect(message(() => checkKey(key))).toMatch(why);
    expect(() => encodeAcquire("semaphore", key, 1, undefined, 2)).toThrow(InvalidArgumentError);
  });

  it("property: a key is refused if and only if the server would refuse it, or UTF-8 cannot carry it", () => {
    const unit = fc.oneof(
      fc.string({ unit: "binary", maxLength: 1 }),
      fc.constantFrom(
        " ",
        "\t",
        "\r",
        "\n",
        "\u0000",
        "\u00a0",
        "\u3000",
        "\ufeff",
        "\u2028",
        "\ud800",
        "\udc00",
        "🔒",
      ),
    );
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit, maxLength: 20 }), fc.string({ unit, minLength: 60, maxLength: 130 })),
        (key) => {
          const wellFormed = !/\p{Cs}/u.test(key);
          const expected =
            key.length > 0 && !/[ \t\r\n]/.test(key) && wellFormed && new TextEncoder().encode(key).length <= 256;
          let accepted = true;
          try {
            checkKey(key);
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidArgumentError);
            accepted = false;
          }
          expect(accepted).toBe(expected);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("accepts 256 UTF-8 bytes of Unicode spaces", () => {
    expect(checkKey(`${"\u3000".repeat(85)}x`)).toHaveLength(86);
  });

  it("refuses a bad key before a single byte is sent, on every path", async () => {
    const conn = await connect({ host: "h", port: 1 });
    const peer = rt.peers[0];
    for (const key of ["", "a b", "a\tb", "a\rb", "a\n", "a\ud800"]) {
      for (const call of [
        () => acquire(conn, key, 1),
        () => enqueue(conn, key),
        () => waitForLock(conn, key, 1),
        () => renew(conn, key, token(1), 5),
        () => release(conn, key, token(1)),
        () => semAcquire(conn, key, 1, 2),
        () => semEnqueue(conn, key, 2),
      ]) {
        await expect(call()).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      expect(() => new DistributedLock({ key })).toThrow(InvalidArgumentError);
      expect(() => new DistributedSemaphore({ key, limit: 2 })).toThrow(InvalidArgumentError);
    }
    expect(peer?.received).toBe("");
    expect(rt.peers).toHaveLength(1);
    conn.close();
  });

  it("sends a key with NUL, NBSP and U+3000 as is, and takes the grant", async () => {
    const conn = await connect({ host: "h", port: 1 });
    const peer = rt.peers[0];
    const key = "\u0000job\u00a0\u3000";
    const granted = acquire(conn, key, 0);
    expect(await peer?.nextRequest(1)).toEqual(["l", key, "0"]);
    peer?.send(`ok ${token(7)} 33\n`);
    expect((await granted).token).toBe(token(7));
    expect(() => new DistributedLock({ key })).not.toThrow();
    conn.close();
  });
});

/** What Go's strings.TrimSpace strips. */
const GO_SPACES = [
  ..."\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2028\u2029\u202f\u205f\u3000",
  ...Array.from({ length: 11 }, (_, i) => String.fromCharCode(0x2000 + i)),
];

describe("auth secrets: what the server compares is what the user wrote", () => {
  it.each(GO_SPACES.map((c) => [c.codePointAt(0)?.toString(16).padStart(4, "0"), c]))(
    "refuses U+%s at either end of the secret",
    (_hex, c) => {
      expect(() => checkSecret(`${c}s3cret`)).toThrow(InvalidArgumentError);
      expect(() => checkSecret(`s3cret${c}`)).toThrow(InvalidArgumentError);
      if (c !== "\r" && c !== "\n") expect(checkSecret(`s3${c}cret`)).toBe(`s3${c}cret`);
    },
  );

  it("refuses at the ends exactly the characters Go trims (Unicode White_Space), of every BMP character", () => {
    for (let cp = 0; cp <= 0xffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCharCode(cp);
      let refused = false;
      try {
        checkSecret(`x${c}`);
      } catch {
        refused = true;
      }
      expect(refused, `U+${cp.toString(16)}`).toBe(/\p{White_Space}/u.test(c));
    }
  });

  it.each([
    ["empty", ""],
    ["CR inside", "a\rb"],
    ["LF inside", "a\nauth\n_\nb"],
    ["lone surrogate", "a\ud800b"],
    ["257 bytes", "s".repeat(257)],
    ["not a string", 42],
  ])("refuses a secret: %s", (_name, secret) => {
    expect(() => checkSecret(secret)).toThrow(InvalidArgumentError);
  });

  it.each([
    ["a space inside", "s3 cr et"],
    ["NUL inside", "s3\u0000cret"],
    ["BOM at either end (Go does not trim it)", "\ufeffs3cret\ufeff"],
    ["zero-width space at the end (not White_Space)", "s3cret\u200b"],
    ["256 bytes", "s".repeat(256)],
  ])("accepts a secret with %s", (_name, secret) => {
    expect(checkSecret(secret)).toBe(secret);
  });

  it("never shows the secret, nor the whitespace around it, in the message", () => {
    for (const secret of [" hunter2", "hunter2\u00a0", "hun\nter2", "hunter2\ud800", `hunter2${"x".repeat(300)}`]) {
      const text = message(() => checkSecret(secret));
      expect(text).not.toMatch(/hunter|\u00a0|\\u00a0/);
      expect(text).toMatch(/^auth /);
    }
  });

  it("refuses a bad secret at construction and connect time, before connecting", async () => {
    for (const auth of ["s3cret\u3000", "\u0085s3cret", "s3\r\ncret", ""]) {
      expect(() => new DistributedLock({ key: "k", auth })).toThrow(InvalidArgumentError);
      await expect(connect({ host: "h", port: 1, auth })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(rt.peers).toHaveLength(0);
  });

  it("sends an accepted secret as written", async () => {
    const opened = connect({ host: "h", port: 1, auth: "s3\u00a0cr\u0000et" });
    const peer = await rt.peer();
    expect(await peer.nextRequest(1)).toEqual(["auth", "_", "s3\u00a0cr\u0000et"]);
    peer.send("ok\n");
    (await opened).close();
  });
});

/** Undo {@link quote}, to show that it loses nothing. */
function unquote(q: string): string {
  expect(q.startsWith('"') && q.endsWith('"')).toBe(true);
  const named: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" };
  return q
    .slice(1, -1)
    .replace(/\\(?:u\{([0-9a-f]+)\}|u([0-9a-f]{4})|([nrt"\\]))/g, (_m, big?: string, small?: string, short?: string) =>
      big !== undefined
        ? String.fromCodePoint(Number.parseInt(big, 16))
        : small !== undefined
          ? String.fromCharCode(Number.parseInt(small, 16))
          : (named[short as string] as string),
    );
}

/** What a message must never show raw: controls, Unicode spaces but U+0020, format characters, separators, lone surrogates. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zs}\p{Zl}\p{Zp}\p{Cs}\p{White_Space}]/u;

describe("messages show what a value holds", () => {
  it.each([
    ["a\u00a0b", '"a\\u00a0b"'],
    ["a b", '"a b"'],
    ["a\n\r\tb", '"a\\n\\r\\tb"'],
    ['say "hi" \\o/', '"say \\"hi\\" \\\\o/"'],
    ["\u0000\u0007\u007f\u0085", '"\\u0000\\u0007\\u007f\\u0085"'],
    ["\ufeffk\u200d\u200b\u2060\u00ad", '"\\ufeffk\\u200d\\u200b\\u2060\\u00ad"'],
    ["\u2028\u2029\u3000\u2002\u202f\u1680", '"\\u2028\\u2029\\u3000\\u2002\\u202f\\u1680"'],
    ["\ud800x\udfff", '"\\ud800x\\udfff"'],
    ["\u{e0001}\u3164\u2800\ufe0f", '"\\u{e0001}\\u3164\\u2800\\ufe0f"'],
    ["ключ-🔒-é", '"ключ-🔒-é"'],
  ])("quote(%j) is %s", (value, shown) => {
    expect(quote(value)).toBe(shown);
  });

  it("describes non-strings, and cuts long strings saying so", () => {
    expect([quote(42), quote(undefined), quote(null), quote({}), quote([1])]).toEqual([
      "42",
      "undefined",
      "null",
      "an object",
      "an array",
    ]);
    expect(quote("🔒".repeat(300), 3)).toBe('"🔒🔒🔒"... (300 characters in all)');
  });

  it("property: quote shows nothing invisible, and loses nothing", () => {
    const awkward = fc.constantFrom(
      "\u00a0",
      "\u3000",
      "\ufeff",
      "\u200d",
      "\u2028",
      "\ud800",
      "\udc00",
      " ",
      '"',
      "\\",
    );
    const text = fc.oneof(
      fc.string({ unit: "binary", maxLength: 60 }),
      fc.string({ unit: fc.oneof(awkward, fc.string({ unit: "binary", maxLength: 1 })), maxLength: 60 }),
    );
    fc.assert(
      fc.property(text, (s) => {
        const q = quote(s, 1000);
        for (const ch of q) expect(ch === " " || !INVISIBLE.test(ch), JSON.stringify(q)).toBe(true);
        expect(unquote(q)).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });

  it("key errors quote the key with its invisible characters escaped", () => {
    const text = message(() => checkKey("a b\u00a0"));
    expect(text).toBe('key must not contain a space (the server would refuse it), got "a b\\u00a0"');
    expect(message(() => checkKey("a\u3000\nb"))).toContain('got "a\\u3000\\nb"');
    expect(message(() => checkKey("\ufeff\ud800"))).toContain('got "\\ufeff\\ud800"');
    expect(message(() => checkKey(`\u00a0${"x".repeat(300)}`))).toMatch(
      /got "\\u00a0x+"\.\.\. \(301 characters in all\)$/,
    );
  });

  it("token, host, timeout and lost-lock messages quote the same way", () => {
    expect(message(() => checkToken("ab\u00a0cd"))).toContain('got "ab\\u00a0cd"');
    expect(message(() => checkToken(undefined))).toContain("got undefined");
    expect(message(() => checkHost("db\u3000"))).toContain('got "db\\u3000"');
    expect(new AcquireTimeoutError("a\u00a0b", 3).message).toBe('timed out after 3s waiting for "a\\u00a0b"');
    expect(new LockLostError("\ufeffjob", "renewal failed").message).toBe('lost "\\ufeffjob": renewal failed');
  });
});

describe("a connection the server closes before answering", () => {
  const closeMessage = async (tls: boolean, send: boolean, lateMs = 0): Promise<LockError> => {
    const conn = await connect({ host: "h", port: 1, tls });
    const peer = rt.peers[rt.peers.length - 1];
    if (send) void conn.request(encodeWait("lock", "k", 1), "w", () => null, 5000).catch(() => {});
    if (lateMs > 0) {
      const now = performance.now();
      vi.spyOn(performance, "now").mockReturnValue(now + lateMs);
    }
    peer?.hangUp();
    expect(conn.closed).toBe(true);
    const error = conn.closeError as LockError;
    expect(error.code).toBe("CONNECTION");
    return error;
  };

  it("before any request: names the connection limit, not TLS", async () => {
    const { message: text } = await closeMessage(false, false);
    expect(text).toMatch(/^h:1: the server closed the connection \d+ ms after it opened, before any request was sent/);
    expect(text).toMatch(/connection limit \(--max-connections\)/);
    expect(text).not.toMatch(/tls/i);
  });

  it("after a request, plain: names both TLS and the connection limit", async () => {
    const { message: text } = await closeMessage(false, true);
    expect(text).toMatch(/before answering anything/);
    expect(text).toMatch(/if it expects TLS, set the tls option/);
    expect(text).toMatch(/connection limit \(--max-connections\)/);
  });

  it("over TLS: never tells the user to set the tls option", async () => {
    for (const send of [false, true]) {
      const { message: text } = await closeMessage(true, send);
      expect(text).toMatch(/^h:1: the server closed the TLS connection before answering anything/);
      expect(text).not.toMatch(/set the tls option/);
    }
  });

  it("long after opening: says how long, and that the server may have stopped", async () => {
    const sent = await closeMessage(false, true, 12_000);
    expect(sent.message).toMatch(
      /12\.0 s after the connection opened, before answering anything \(it may have stopped/,
    );
    const idle = await closeMessage(false, false, 12_000);
    expect(idle.message).toMatch(
      /12\.0 s after the connection opened, before any request was sent \(it may be shutting down/,
    );
  });

  it("after a reply: just says the server closed it", async () => {
    const conn = await connect({ host: "h", port: 1 });
    const peer = rt.peers[0];
    const answered = conn.request(encodeWait("lock", "k", 1), "w", () => null, 5000);
    peer?.send("timeout\n");
    await answered;
    peer?.hangUp();
    expect(conn.server).toBe("h:1");
    expect(conn.closeError?.message).toBe("h:1: the server closed the connection");
  });
});
