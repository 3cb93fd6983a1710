import { describe, expect, it } from "vitest";
import { InvalidArgumentError, ProtocolError, ServerError } from "../../src/errors.ts";
import { leaderTarget, MAX_LEADER_REDIRECTS, NotLeaderError } from "../../src/leader.ts";
import type { Target } from "../../src/options.ts";
import {
  encodeAcquire,
  encodeEnqueue,
  encodeRelease,
  encodeRenew,
  encodeStats,
  encodeWait,
  LineDecoder,
  parseEnqueueReply,
  parseGrantReply,
  parseOkReply,
  parseRenewReply,
  parseStatsReply,
} from "../../src/protocol.ts";

const text = (b: Uint8Array | string): string => (typeof b === "string" ? b : new TextDecoder().decode(b));
const TOKEN = "0123456789abcdef0123456789abcdef";

describe("encoding requests", () => {
  it("encodes every command as three lines", () => {
    expect(text(encodeAcquire("lock", "k", 10, undefined))).toBe("l\nk\n10\n");
    expect(text(encodeAcquire("lock", "k", 0, 20))).toBe("l\nk\n0 20\n");
    expect(text(encodeAcquire("semaphore", "k", 5, undefined, 3))).toBe("sl\nk\n5 3\n");
    expect(text(encodeAcquire("semaphore", "k", 5, 9, 3))).toBe("sl\nk\n5 3 9\n");
    expect(text(encodeEnqueue("lock", "k", undefined))).toBe("e\nk\n\n");
    expect(text(encodeEnqueue("lock", "k", 7))).toBe("e\nk\n7\n");
    expect(text(encodeEnqueue("semaphore", "k", undefined, 2))).toBe("se\nk\n2\n");
    expect(text(encodeEnqueue("semaphore", "k", 7, 2))).toBe("se\nk\n2 7\n");
    expect(text(encodeWait("lock", "k", 3))).toBe("w\nk\n3\n");
    expect(text(encodeWait("semaphore", "k", 3))).toBe("sw\nk\n3\n");
    expect(text(encodeRenew("lock", "k", TOKEN, 30))).toBe(`n\nk\n${TOKEN} 30\n`);
    expect(text(encodeRenew("semaphore", "k", TOKEN, undefined))).toBe(`sn\nk\n${TOKEN}\n`);
    expect(text(encodeRelease("lock", "k", TOKEN))).toBe(`r\nk\n${TOKEN}\n`);
    expect(text(encodeRelease("semaphore", "k", TOKEN))).toBe(`sr\nk\n${TOKEN}\n`);
    expect(text(encodeStats())).toBe("stats\n_\n\n");
  });

  it("sends non-ASCII keys as UTF-8", () => {
    expect(new TextEncoder().encode(encodeWait("lock", "ключ-🔒", 1)).length).toBe("w\n\n1\n".length + 13);
  });

  it.each([
    ["empty", ""],
    ["space", "a b"],
    ["tab", "a\tb"],
    ["LF", "a\nr\nk"],
    ["CR", "a\rb"],
    ["lone surrogate", "a\ud800b"],
    ["257 bytes", "x".repeat(257)],
    ["257 bytes of multibyte", `${"é".repeat(128)}x`],
  ])("rejects a key with %s", (_name, key) => {
    expect(() => encodeAcquire("lock", key, 1, undefined)).toThrow(InvalidArgumentError);
  });

  it.each([
    ["NUL", "a\u0000b"],
    ["other C0", "a\u0007b"],
    ["DEL", "a\u007fb"],
    ["no-break space", "a\u00a0b"],
    ["line separator", "a\u2028b"],
  ])("sends a key with %s as is, as the server stores it", (_name, key) => {
    expect(text(encodeAcquire("lock", key, 1, undefined))).toBe(`l\n${key}\n1\n`);
  });

  it("accepts a key of exactly 256 UTF-8 bytes", () => {
    expect(() => encodeAcquire("lock", "é".repeat(128), 1, undefined)).not.toThrow();
    expect(() => encodeAcquire("lock", "🔒".repeat(64), 1, undefined)).not.toThrow();
  });

  it("rejects non-string keys", () => {
    expect(() => encodeAcquire("lock", 42 as unknown as string, 1, undefined)).toThrow(InvalidArgumentError);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2_147_484, "1" as unknown as number])(
    "rejects timeout %s",
    (t) => {
      expect(() => encodeAcquire("lock", "k", t, undefined)).toThrow(InvalidArgumentError);
      expect(() => encodeWait("lock", "k", t)).toThrow(InvalidArgumentError);
    },
  );

  it.each([0, -3, 0.5, Number.NaN])("rejects lease %s", (lease) => {
    expect(() => encodeAcquire("lock", "k", 1, lease)).toThrow(InvalidArgumentError);
    expect(() => encodeEnqueue("lock", "k", lease)).toThrow(InvalidArgumentError);
    expect(() => encodeRenew("lock", "k", TOKEN, lease)).toThrow(InvalidArgumentError);
  });

  it.each([0, -1, 1.5, Number.NaN, undefined])("rejects semaphore limit %s", (limit) => {
    expect(() => encodeAcquire("semaphore", "k", 1, undefined, limit)).toThrow(InvalidArgumentError);
    expect(() => encodeEnqueue("semaphore", "k", undefined, limit)).toThrow(InvalidArgumentError);
  });

  it("rejects a request whose argument line would pass 256 bytes", () => {
    expect(() => encodeRenew("lock", "k", "a".repeat(256), 5)).toThrow(InvalidArgumentError);
    expect(() => encodeRelease("lock", "k", "a".repeat(256))).not.toThrow();
  });

  it.each(["", "a b", "a\nb", "a\u0000", "é"])("rejects token %j", (tok) => {
    expect(() => encodeRelease("lock", "k", tok)).toThrow(InvalidArgumentError);
    expect(() => encodeRenew("lock", "k", tok, 5)).toThrow(InvalidArgumentError);
  });
});

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

function lines(chunks: Array<string | Uint8Array>, max?: number): string[] {
  const d = new LineDecoder(max);
  const out: string[] = [];
  const enc = new TextEncoder();
  for (const c of chunks) d.push(typeof c === "string" ? enc.encode(c) : c, (l) => out.push(l));
  return out;
}

describe("LineDecoder", () => {
  it("delivers two replies in one chunk", () => {
    expect(lines(["ok\nqueued\n"])).toEqual(["ok", "queued"]);
  });

  it("joins a reply split across chunks, and accepts \\r\\n", () => {
    expect(lines(["o", "k 12", "3 4", "5\r", "\nti", "meout\r\n"])).toEqual(["ok 123 45", "timeout"]);
  });

  it("decodes a multi-byte character split across chunks", () => {
    const bytes = new TextEncoder().encode("ok 🔒é\n");
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(lines([bytes.slice(0, cut), bytes.slice(cut)])).toEqual(["ok 🔒é"]);
    }
  });

  it("holds a partial line until its end arrives", () => {
    const d = new LineDecoder();
    const out: string[] = [];
    d.push(new TextEncoder().encode("ok"), (l) => out.push(l));
    expect(out).toEqual([]);
    expect(d.pendingBytes).toBe(2);
  });

  it("fails an overlong line instead of buffering it", () => {
    expect(() => lines(["x".repeat(40)], 16)).toThrow(ProtocolError);
    expect(() => lines(["x".repeat(10), "x".repeat(10)], 16)).toThrow(ProtocolError);
    expect(() => lines([`${"x".repeat(17)}\n`], 16)).toThrow(ProtocolError);
    expect(lines([`${"x".repeat(16)}\r\n`], 16)).toEqual(["x".repeat(16)]);
  });

  it("rejects invalid UTF-8 with a ProtocolError", () => {
    expect(() => lines([new Uint8Array([0x6f, 0xff, 0x0a])])).toThrow(ProtocolError);
  });

  it("copies leftovers even from a Node Buffer, whose slice() is a view", () => {
    const d = new LineDecoder();
    const out: string[] = [];
    const buf = Buffer.from("ok 1");
    d.push(buf, (l) => out.push(l));
    buf.fill(0x21);
    d.push(Buffer.from("2\n"), (l) => out.push(l));
    expect(out).toEqual(["ok 12"]);
  });

  it("uses a stream's Latin-1 decoder only on its own chunks, and only for ASCII lines", () => {
    const seen: Uint8Array[] = [];
    const d = new LineDecoder(undefined, (bytes, start, end) => {
      seen.push(bytes);
      return String.fromCharCode(...bytes.subarray(start, end));
    });
    const out: string[] = [];
    const chunks = [utf8("ok a\r\nok é\nok b"), utf8("c\nok d\n")];
    for (const c of chunks) d.push(c, (l) => out.push(l));
    // "ok é" read as Latin-1 is not ASCII, so the strict decoder reads it; "ok bc" was joined from two chunks.
    expect(out).toEqual(["ok a", "ok é", "ok bc", "ok d"]);
    expect(seen).toEqual([chunks[0], chunks[0], chunks[1]]);
    expect(seen.every((b) => chunks.includes(b))).toBe(true);
  });

  it("decodes a chunk of whole lines at once, with or without a Latin-1 decoder", () => {
    for (const fast of [undefined, (b: Uint8Array, s: number, e: number) => String.fromCharCode(...b.subarray(s, e))]) {
      const d = new LineDecoder(16, fast);
      const out: string[] = [];
      d.push(utf8("ok a\r\nok é🔒\n\r\n\nok\n"), (l) => out.push(l));
      expect(out).toEqual(["ok a", "ok é🔒", "", "", "ok"]);
      // Exactly the longest line allowed, and its terminator.
      d.push(utf8(`${"x".repeat(16)}\n`), (l) => out.push(l));
      expect(out.at(-1)).toBe("x".repeat(16));
      expect(() => d.push(utf8(`${"x".repeat(17)}\n`), () => {})).toThrow(ProtocolError);
    }
  });

  it("keeps a byte-order mark, so a line starting with one is no valid reply", () => {
    expect(lines([new Uint8Array([0xef, 0xbb, 0xbf, 0x6f, 0x6b, 0x0a])])).toEqual(["\ufeffok"]);
    expect(() => parseOkReply("\ufeffok", "r")).toThrow(ProtocolError);
  });

  it("still hands over the lines before an invalid one in the same chunk", () => {
    const out: string[] = [];
    const d = new LineDecoder();
    expect(() => d.push(new Uint8Array([0x6f, 0x6b, 0x0a, 0xff, 0x0a]), (l) => out.push(l))).toThrow(ProtocolError);
    expect(out).toEqual(["ok"]);
  });

  it("copies leftovers, so a reused chunk buffer cannot corrupt them", () => {
    const d = new LineDecoder();
    const out: string[] = [];
    const buf = new TextEncoder().encode("ok 1");
    d.push(buf, (l) => out.push(l));
    buf.fill(0x21);
    d.push(new TextEncoder().encode("2\n"), (l) => out.push(l));
    expect(out).toEqual(["ok 12"]);
  });
});

describe("parsing replies", () => {
  it("parses grants with 3 and 4 fields", () => {
    expect(parseGrantReply(`ok ${TOKEN} 33`, "l")).toEqual({ token: TOKEN, lease: 33 });
    expect(parseGrantReply(`ok ${TOKEN} 33 000000000000002a`, "l")).toEqual({
      token: TOKEN,
      lease: 33,
      fence: "000000000000002a",
    });
    expect(parseGrantReply("timeout", "l")).toBeNull();
  });

  it("parses enqueue replies", () => {
    expect(parseEnqueueReply(`acquired ${TOKEN} 5`, "e")).toEqual({ status: "acquired", token: TOKEN, lease: 5 });
    expect(parseEnqueueReply(`acquired ${TOKEN} 5 77`, "e")).toEqual({
      status: "acquired",
      token: TOKEN,
      lease: 5,
      fence: "77",
    });
    expect(parseEnqueueReply("queued", "e")).toEqual({ status: "queued", token: null, lease: null });
  });

  it("parses renew replies with 2 and 3 fields", () => {
    expect(parseRenewReply("ok 30", "n")).toEqual({ lease: 30 });
    expect(parseRenewReply("ok 30 99", "n")).toEqual({ lease: 30, fence: "99" });
  });

  it("parses ok", () => {
    expect(() => parseOkReply("ok", "r")).not.toThrow();
  });

  it.each([
    ["error_max_locks", "MAX_LOCKS"],
    ["error_max_waiters", "MAX_WAITERS"],
    ["error_limit_mismatch", "LIMIT_MISMATCH"],
    ["error_already_enqueued", "ALREADY_ENQUEUED"],
    ["error_not_enqueued", "NOT_ENQUEUED"],
    ["error_lease_expired", "LEASE_EXPIRED"],
    ["error_draining", "DRAINING"],
    ["error_auth", "AUTH"],
    ["error_not_leader", "NOT_LEADER"],
    ["error", "SERVER_ERROR"],
    ["error_from_the_future", "SERVER_ERROR"],
  ])("maps %s to a ServerError with code %s", (status, code) => {
    for (const parse of [
      () => parseGrantReply(status, "l"),
      () => parseEnqueueReply(status, "e"),
      () => parseRenewReply(status, "n"),
      () => parseOkReply(status, "r"),
      () => parseStatsReply(status),
    ]) {
      try {
        parse();
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(ServerError);
        expect((err as ServerError).code).toBe(code);
        expect((err as ServerError).status).toBe(status);
      }
    }
  });

  it("reads the leader's address of error_not_leader from every reply, and no address from a bare one", () => {
    for (const [line, leader] of [
      ["error_not_leader 10.0.0.2:6388", "10.0.0.2:6388"],
      ["error_not_leader [fd00::2]:6388", "[fd00::2]:6388"],
      ["error_not_leader  db2:6388 ", "db2:6388"],
      ["error_not_leader", undefined],
      ["error_not_leader ", undefined],
    ] as const) {
      for (const parse of [
        () => parseGrantReply(line, "l"),
        () => parseEnqueueReply(line, "e"),
        () => parseRenewReply(line, "n"),
        () => parseOkReply(line, "r"),
      ]) {
        const err = (() => {
          try {
            parse();
          } catch (e) {
            return e;
          }
        })();
        expect(err, line).toBeInstanceOf(NotLeaderError);
        expect(err, line).toMatchObject({ code: "NOT_LEADER", status: "error_not_leader", leader });
      }
    }
    // Only that status: a longer word is another (unknown) status.
    expect(() => parseOkReply("error_not_leaders x", "r")).toThrow(expect.objectContaining({ code: "SERVER_ERROR" }));
  });

  it("follows a leader only to a configured server, written the same way, at most twice", () => {
    const t = (host: string, port: number) =>
      ({ open: { host, port }, poolKey: `${host}:${port}` }) as unknown as Target;
    const targets = [t("10.0.0.1", 6388), t("DB2", 6388), t("fd00::3", 6388)];
    const err = (leader?: string) => new NotLeaderError("l", leader);
    expect(leaderTarget(err("10.0.0.1:6388"), targets, 0)).toBe(targets[0]);
    expect(leaderTarget(err("db2:6388"), targets, 1)).toBe(targets[1]);
    expect(leaderTarget(err("[fd00::3]:6388"), targets, 0)).toBe(targets[2]);
    expect(leaderTarget(err("10.0.0.1:6388"), targets, MAX_LEADER_REDIRECTS)).toBeUndefined();
    expect(MAX_LEADER_REDIRECTS).toBe(2);
    for (const leader of [
      undefined,
      "10.0.0.1:6389",
      "10.0.0.9:6388",
      "10.0.0.1",
      "http://10.0.0.1:6388",
      "fd00::3:6388",
    ]) {
      expect(leaderTarget(err(leader), targets, 0), String(leader)).toBeUndefined();
    }
    expect(leaderTarget(new ServerError("x", "error", "SERVER_ERROR"), targets, 0)).toBeUndefined();
  });

  it.each([
    "",
    "ok",
    `ok ${TOKEN}`,
    `ok ${TOKEN} x`,
    `ok ${TOKEN} -1`,
    `ok ${TOKEN} 1.5`,
    `ok ${TOKEN} 5 6 7`,
    `ok  ${TOKEN} 5`,
    "timeout now",
    "queued",
    "OK",
  ])("rejects malformed grant %j with a ProtocolError", (line) => {
    expect(() => parseGrantReply(line, "l")).toThrow(ProtocolError);
  });

  it("takes a bare renew ok (older servers) as confirming the TTL asked for", () => {
    expect(parseRenewReply("ok", "n")).toEqual({});
  });

  it.each(["ok ", "ok x", "ok 1 2 3", "acquired", "ok -1"])("rejects malformed renew %j", (line) => {
    expect(() => parseRenewReply(line, "n")).toThrow(ProtocolError);
  });

  it.each(["acquired", `acquired ${TOKEN}`, "queued 1", "ok"])("rejects malformed enqueue %j", (line) => {
    expect(() => parseEnqueueReply(line, "e")).toThrow(ProtocolError);
  });

  it("parses stats and normalises null lists", () => {
    const s = parseStatsReply(
      'ok {"connections":2,"locks":[{"key":"a","owner_conn_id":1,"lease_expires_in_s":3.5,"waiters":0}],"semaphores":null,"idle_locks":null,"idle_semaphores":[],"uptime_s":9}',
    );
    expect(s.connections).toBe(2);
    expect(s.locks[0]?.key).toBe("a");
    expect(s.semaphores).toEqual([]);
    expect(s.idle_locks).toEqual([]);
    expect(s.uptime_s).toBe(9);
  });

  it.each(["ok", "ok {", "ok []", 'ok {"locks":[]}', 'ok {"connections":1,"locks":{}}', "stats"])(
    "rejects malformed stats %j",
    (line) => {
      expect(() => parseStatsReply(line)).toThrow(ProtocolError);
    },
  );
});
