import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.ts";
import { fenceOfToken, fenceValueOf, parseFence, withTokenFence } from "../../src/fence.ts";

describe("fences as numbers", () => {
  it("order where their text does not", () => {
    expect("100" < "99").toBe(true);
    expect(parseFence("100") > parseFence("99")).toBe(true);
  });

  it("keep every digit past 2^53", () => {
    expect(parseFence("18446744073709551615")).toBe(2n ** 64n - 1n);
    expect(parseFence("9007199254740993") > parseFence("9007199254740992")).toBe(true);
  });

  it("refuse what is not a decimal number, with the value named", () => {
    for (const bad of ["", "-1", "1.5", "0x10", " 7", "7 ", "01", "abc"]) {
      expect(() => parseFence(bad), bad).toThrow(InvalidArgumentError);
    }
    expect(() => parseFence("abc")).toThrow(/decimal number, got "abc"/);
    expect(parseFence("0")).toBe(0n);
  });

  it("are undefined without a decimal fence", () => {
    expect(fenceValueOf(undefined)).toBeUndefined();
    expect(fenceValueOf("f00")).toBeUndefined();
    expect(fenceValueOf("42")).toBe(42n);
  });
});

describe("fences in v2.1 tokens", () => {
  const SALT = "0123456789abcdef";

  it("are the first 16 hex digits, big-endian, as a bigint past 2^53", () => {
    expect(fenceOfToken(`17d3f0a1b2c3d4e5${SALT}`)).toBe(0x17d3f0a1b2c3d4e5n);
    expect(fenceOfToken(`ffffffffffffffff${SALT}`)).toBe(2n ** 64n - 1n);
    expect(fenceOfToken(`0000000000000001${SALT}`)).toBe(1n);
    // One more grant: the next fence orders after, where a Number would not tell them apart.
    const a = fenceOfToken(`17d3f0a1b2c3d4e5${SALT}`) as bigint;
    const b = fenceOfToken(`17d3f0a1b2c3d4e6${SALT}`) as bigint;
    expect(b > a).toBe(true);
    expect(Number(a) === Number(b)).toBe(true);
  });

  it("are undefined for anything but exactly 32 lower-case hex digits", () => {
    for (const bad of [
      "",
      `17d3f0a1b2c3d4e5${SALT}0`,
      `17d3f0a1b2c3d4e${SALT}`,
      `17D3F0A1B2C3D4E5${SALT}`,
      `17d3f0a1b2c3d4eg${SALT}`,
      ` 7d3f0a1b2c3d4e5${SALT}`,
      "0x7d3f0a1b2c3d4e50123456789abcde",
      "9f86d081-884c-7d65-9a2f-eaa0c55ad015",
    ]) {
      expect(fenceOfToken(bad), bad).toBeUndefined();
    }
    expect(fenceOfToken(42 as unknown as string)).toBeUndefined();
  });

  it("reach a grant only when asked, and never over a fence field of the reply", () => {
    const token = `17d3f0a1b2c3d4e5${SALT}`;
    const bare = { token, lease: 30 };
    expect(withTokenFence(bare, false)).toBe(bare);
    expect(withTokenFence(bare, true)).toEqual({ token, lease: 30, fence: String(0x17d3f0a1b2c3d4e5n) });
    const fielded = { token, lease: 30, fence: "7" };
    expect(withTokenFence(fielded, true)).toBe(fielded);
    const random = { token: "not-hex", lease: 30 };
    expect(withTokenFence(random, true)).toBe(random);
  });
});
