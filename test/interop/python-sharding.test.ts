/**
 * Interop: this package and the official Python client (PyPI `dflockd-client`,
 * pinned in ../harness/python.ts) must send every key to the same server. The
 * Python side runs the client's own `stable_hash_shard`, not a reimplementation.
 */
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { crc32, stableHashShard } from "../../src/sharding.ts";
import { checkKey, utf8Length } from "../../src/validate.ts";
import { ensurePythonClient, PYTHON_CLIENT_VERSION } from "../harness/python.ts";
import { seededRng } from "../support/runtime.ts";

const SHARD_COUNTS = [1, 2, 3, 5, 7, 16, 100];
const KEY_COUNT = 10_000;

/** Known CRC-32 values; n = 2**32 makes the shard the CRC itself. */
const CHECKS: [string, number, number][] = [
  ["123456789", 2 ** 32, 0xcbf43926],
  ["my-job", 2 ** 32, 2813030800],
  ["foo", 2 ** 32, 2356372769],
  ["my-job", 3, 1],
];

const PY_SCRIPT = `
import dataclasses, json, sys
import dflockd_client
from dflockd_client import stable_hash_shard
req = json.loads(sys.stdin.buffer.read().decode("utf-8"))
classes = ("SyncDistributedLock", "SyncDistributedSemaphore", "AsyncDistributedLock", "AsyncDistributedSemaphore")
defaults = [c for c in classes
            if {f.name: f.default for f in dataclasses.fields(getattr(dflockd_client, c))}["sharding_strategy"]
            is stable_hash_shard]
sys.stdout.write(json.dumps({
    "version": dflockd_client.__version__,
    "function": stable_hash_shard.__module__ + "." + stable_hash_shard.__qualname__,
    "defaults": defaults,
    "bytes": [len(k.encode("utf-8")) for k in req["keys"]],
    "shards": [[stable_hash_shard(k, n) for n in req["ns"]] for k in req["keys"]],
    "checks": [stable_hash_shard(k, n) for k, n, _ in req["checks"]],
}))
`;

interface PyAnswer {
  version: string;
  function: string;
  defaults: string[];
  bytes: number[];
  shards: number[][];
  checks: number[];
}

const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

// Code point pools. None holds space, tab, CR, LF or surrogate halves (the server refuses the first four;
// a lone surrogate is not Unicode). UNUSUAL holds what the server stores byte for byte though it is
// invisible or "whitespace" elsewhere: controls, DEL, Unicode spaces, BOM, line and paragraph separators.
const ASCII = range(0x21, 0x7e);
const LATIN1 = range(0xa1, 0xff); // ¡ .. ÿ, accents included (U+00A0 NBSP left out: whitespace)
const CJK = [...range(0x4e00, 0x4fff), ...range(0x3041, 0x3096), ...range(0xac00, 0xacff), ...range(0x20000, 0x200ff)];
const SCRIPTS = [...range(0x391, 0x3a9), ...range(0x410, 0x44f), ...range(0x5d0, 0x5ea), ...range(0x627, 0x64a)];
const EMOJI = [...range(0x1f300, 0x1f5ff), ...range(0x1f600, 0x1f64f), ...range(0x1f680, 0x1f6ff), 0x2603, 0x2764];
const COMBINING = range(0x300, 0x36f);
// UTF-8 length boundaries (1/2/3/4 bytes), both sides of the surrogate block, and the last code point.
const EDGES = [0x7e, 0xa1, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff, 0x200b, 0x200f];
const ZWJ_SEQUENCES = ["👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🏳️‍⚧️", "❤️‍🔥", "🧑‍🤝‍🧑", "👁️‍🗨️", "🐻‍❄️", "🇯🇵", "🇺🇳"];
const UNUSUAL = [
  0x00, 0x01, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f, 0x85, 0xa0, 0x1680, 0x2002, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
  0xfeff,
];
const ALL = [...ASCII, ...LATIN1, ...CJK, ...SCRIPTS, ...EMOJI, ...COMBINING, ...EDGES, ...UNUSUAL];

function generateKeys(): { keys: string[]; kinds: Map<string, number> } {
  const rand = seededRng(0xdf10cd);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const from = (pool: number[], len: number) => String.fromCodePoint(...Array.from({ length: len }, () => pick(pool)));
  const emoji = (): string => {
    const r = int(4);
    if (r === 0) return pick(ZWJ_SEQUENCES);
    if (r === 1) return String.fromCodePoint(pick(EMOJI), 0xfe0f); // with variation selector
    if (r === 2) return String.fromCodePoint(pick(EMOJI), 0x1f3fb + int(5), 0x200d, pick(EMOJI)); // skin tone + ZWJ
    return String.fromCodePoint(0x1f1e6 + int(26), 0x1f1e6 + int(26)); // regional-indicator pair (flag)
  };
  /** Exactly `target` UTF-8 bytes: whole code points only, with the last 1-3 bytes filled by a char of that size. */
  const exactBytes = (pool: number[], target: number): string => {
    let s = "";
    let bytes = 0;
    while (target - bytes >= 4) {
      const c = String.fromCodePoint(pick(pool));
      if (bytes + utf8Length(c) > target) continue;
      s += c;
      bytes += utf8Length(c);
    }
    const tail = [ASCII, LATIN1, CJK.filter((c) => c < 0x10000)][target - bytes - 1];
    return tail ? s + String.fromCodePoint(pick(tail)) : s;
  };
  const makers: [string, () => string][] = [
    ["ascii", () => from(ASCII, 1 + int(64))],
    ["latin1", () => from([...ASCII.slice(32, 58), ...LATIN1], 1 + int(40))],
    ["cjk", () => from(CJK, 1 + int(60))],
    ["scripts", () => `${from(ASCII, 1 + int(5))}-${from(SCRIPTS, 1 + int(30))}`],
    ["emoji", () => Array.from({ length: 1 + int(8) }, emoji).join(int(2) ? "" : ":")],
    [
      "combining",
      () => Array.from({ length: 1 + int(12) }, () => from(ASCII, 1) + from(COMBINING, 1 + int(4))).join(""),
    ],
    ["edges", () => from(EDGES, 1 + int(10))],
    ["unusual", () => `${from(ASCII, int(3))}${from(UNUSUAL, 1 + int(4))}${from(ASCII, int(3))}`],
    ["mixed", () => from(ALL, 1 + int(60))],
    ["256-bytes", () => exactBytes(pick([ASCII, LATIN1, CJK, EMOJI, ALL]), 256)],
    ["near-limit", () => exactBytes(ALL, 240 + int(17))],
  ];
  const kinds = new Map<string, number>();
  const keys = new Set<string>();
  const add = (kind: string, key: string) => {
    if (keys.has(key)) return;
    keys.add(key);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  };
  for (const c of ASCII) add("1-byte", String.fromCharCode(c));
  for (const k of [
    "é",
    "e\u0301",
    "🔒lock",
    "é".repeat(128),
    "😀".repeat(64),
    `${"中".repeat(85)}a`,
    ...ZWJ_SEQUENCES,
  ]) {
    add("fixed", k);
  }
  for (const [k] of CHECKS) add("fixed", k);
  while (keys.size < KEY_COUNT) {
    const [kind, make] = pick(makers);
    add(kind, make());
  }
  return { keys: [...keys], kinds };
}

/** A key as JSON with every non-ASCII UTF-16 unit escaped, so invisible marks and pairs show. */
const escapeKey = (key: string): string =>
  JSON.stringify(key).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

describe("sharding interop with the Python client", () => {
  let python = "";

  // The first run creates .cache/python-venv and pip-installs the client: allow for a slow network and a busy machine.
  beforeAll(async () => {
    const found = await ensurePythonClient();
    python = found.python;
    console.log(`[python-sharding] ${found.description}`);
  }, 300_000);

  function askPython(keys: string[]): PyAnswer {
    const input = JSON.stringify({ keys, ns: SHARD_COUNTS, checks: CHECKS });
    const r = spawnSync(python, ["-I", "-c", PY_SCRIPT], { input, encoding: "utf8", maxBuffer: 64 << 20 });
    if (r.error || r.status !== 0) throw new Error(`${python} failed: ${r.error?.message ?? r.stderr}`);
    return JSON.parse(r.stdout) as PyAnswer;
  }

  it("picks the same server as the Python client's own stable_hash_shard for 10,000 varied keys", () => {
    const { keys, kinds } = generateKeys();
    expect(keys.length).toBe(KEY_COUNT);
    const encoder = new TextEncoder();
    for (const k of keys) {
      expect(checkKey(k)).toBe(k); // valid for the server: no whitespace/controls, <= 256 bytes, no lone surrogates
      expect(encoder.encode(k).length).toBe(utf8Length(k));
    }
    expect(kinds.get("1-byte")).toBe(94);
    expect(keys.filter((k) => utf8Length(k) === 256).length).toBeGreaterThan(500);
    expect(keys.filter((k) => /[\ud800-\udbff]/.test(k)).length).toBeGreaterThan(1000); // astral: surrogate pairs
    expect(keys.filter((k) => k.includes("\u200d")).length).toBeGreaterThan(100);
    expect(keys.filter((k) => /[\u0300-\u036f]/.test(k)).length).toBeGreaterThan(500);

    const py = askPython(keys);
    console.log(
      `[python-sharding] ${py.function} from dflockd-client ${py.version}; ${keys.length} keys x n=${SHARD_COUNTS.join(",")}; ` +
        `kinds: ${[...kinds].map(([k, v]) => `${k}=${v}`).join(" ")}`,
    );
    expect(py.version).toBe(PYTHON_CLIENT_VERSION);
    expect(py.function).toBe("dflockd_client.sharding.stable_hash_shard");
    // ... and it is the default strategy of all four Python lock classes.
    expect(py.defaults).toEqual([
      "SyncDistributedLock",
      "SyncDistributedSemaphore",
      "AsyncDistributedLock",
      "AsyncDistributedSemaphore",
    ]);
    expect(py.bytes).toEqual(keys.map(utf8Length));
    expect(py.shards.length).toBe(keys.length);

    // One line per differing key (the first few), with every n on which the two answers differ.
    const report: string[] = [];
    let differingKeys = 0;
    keys.forEach((key, i) => {
      const diffs = SHARD_COUNTS.flatMap((n, j) => {
        const ts = stableHashShard(key, n);
        const theirs = py.shards[i]?.[j];
        return ts === theirs ? [] : [`n=${n}: ts=${ts} python=${theirs}`];
      });
      if (diffs.length === 0 || differingKeys++ >= 5) return;
      const hex = Array.from(encoder.encode(key), (b) => b.toString(16).padStart(2, "0")).join("");
      report.push(`${escapeKey(key)} (utf8 ${hex}, ts crc32 ${crc32(key)}): ${diffs.join(", ")}`);
    });
    expect(differingKeys, `${differingKeys} keys go to different servers; the first:\n${report.join("\n")}`).toBe(0);
  }, 120_000);

  it("agrees on the CRC-32 check values", () => {
    const py = askPython([]);
    for (const [i, [key, n, want]] of CHECKS.entries()) {
      expect(stableHashShard(key, n), key).toBe(want);
      expect(py.checks[i], key).toBe(want);
    }
  }, 60_000);
});
