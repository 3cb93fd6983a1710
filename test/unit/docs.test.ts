/** Every public export carries JSDoc with a summary and an @example. */
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ENTRY = join(import.meta.dirname, "..", "..", "adapters", "node", "index.ts");

function exportsOf(entry: string): Array<{ name: string; doc: string; example: boolean }> {
  const program = ts.createProgram([entry], {
    allowImportingTsExtensions: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (!source) throw new Error("entry not found");
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error("entry has no module symbol");
  return checker.getExportsOfModule(moduleSymbol).map((sym) => {
    const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
    const doc = ts.displayPartsToString(target.getDocumentationComment(checker)).trim();
    const example = target.getJsDocTags(checker).some((t) => t.name === "example");
    return { name: sym.getName(), doc, example };
  });
}

describe("public API documentation", () => {
  const all = exportsOf(ENTRY);

  it("exports the whole contract", () => {
    const names = all.map((e) => e.name);
    for (const n of [
      "DistributedLock",
      "DistributedSemaphore",
      "stats",
      "stableHashShard",
      "ShardingStrategy",
      "AcquireTimeoutError",
      "LockError",
      "acquire",
      "enqueue",
      "waitForLock",
      "renew",
      "release",
      "semAcquire",
      "semEnqueue",
      "semWaitForLock",
      "semRenew",
      "semRelease",
      "connect",
      "HeldLocks",
      "LockSpec",
      "MultiLockOptions",
    ]) {
      expect(names).toContain(n);
    }
  });

  for (const e of all) {
    it(`${e.name} has JSDoc with an example`, () => {
      expect(e.doc.length, `${e.name} has no JSDoc summary`).toBeGreaterThan(10);
      expect(e.example, `${e.name} has no @example`).toBe(true);
    });
  }
});
