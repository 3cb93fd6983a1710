import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { crc32, stableHashShard } from "../../src/sharding.ts";

function keys(): string[] {
  const out = ["", "a", "123456789", "my-job", "foo", "ключ", "鍵", "🔒lock", "é".repeat(128), "~!@#$%^&*()"];
  for (let i = 0; i < 300; i++) {
    out.push(
      `job-${i}`,
      `Ünïcødé-${i}-${String.fromCodePoint(0x4e00 + i)}`,
      `${String.fromCodePoint(0x1f600 + (i % 64))}-${i}`,
    );
  }
  return out;
}

describe("stableHashShard", () => {
  it("matches the check values in the protocol notes", () => {
    expect(crc32("123456789")).toBe(0xcbf43926);
    expect(crc32("my-job")).toBe(2813030800);
    expect(crc32("foo")).toBe(2356372769);
  });

  it("equals Python's zlib.crc32(key.encode()) % n for hundreds of keys", () => {
    const all = keys();
    const py = spawnSync(
      "python3",
      [
        "-c",
        "import sys, json, zlib\nks = json.load(sys.stdin)\nprint(json.dumps([[zlib.crc32(k.encode()) % n for n in (1, 2, 3, 7, 10)] + [zlib.crc32(k.encode())] for k in ks]))",
      ],
      { input: JSON.stringify(all), encoding: "utf8" },
    );
    if (py.error || py.status !== 0) {
      throw new Error(`python3 is needed for this test (it ships with the machine): ${py.error ?? py.stderr}`);
    }
    const expected = JSON.parse(py.stdout) as number[][];
    expect(expected.length).toBe(all.length);
    all.forEach((k, i) => {
      const row = expected[i] as number[];
      expect([1, 2, 3, 7, 10].map((n) => stableHashShard(k, n)).concat(crc32(k)), k).toEqual(row);
    });
  });
});
