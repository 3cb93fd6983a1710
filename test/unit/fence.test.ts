import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.ts";
import { fenceValueOf, parseFence } from "../../src/fence.ts";

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
