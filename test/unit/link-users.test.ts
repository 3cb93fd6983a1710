/**
 * A link's users (src/link.ts `LinkUsers`): what the pool reads of them
 * (`get`, `has`, `set`, `delete`, `size`, `values` in order) is what a `Map`
 * would give, over any sequence of joins and leaves; and `values()` is a copy
 * that users may leave while it is read (a closing link tells each of them).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type LinkUser, LinkUsers } from "../../src/link.ts";

const user = (name: string): LinkUser & { name: string } => ({ name, linkClosed: () => {} });

describe("LinkUsers", () => {
  it("answers as a Map would, in a Map's order, over any joins and leaves", () => {
    const ids = ["lock\u0000a", "lock\u0000b", "lock\u0000c", "sem\u0000a"];
    const op = fc.record({
      kind: fc.constantFrom("set", "delete", "set", "delete", "set"),
      id: fc.constantFrom(...ids),
      n: fc.nat(9),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const users = new LinkUsers();
        const model = new Map<string, LinkUser>();
        for (const { kind, id, n } of ops) {
          if (kind === "set") {
            const u = user(`${id}#${n}`);
            users.set(id, u);
            model.set(id, u);
          } else {
            expect(users.delete(id)).toBe(model.delete(id));
          }
          expect(users.size).toBe(model.size);
          expect(users.values()).toEqual([...model.values()]);
          for (const other of ids) {
            expect(users.has(other)).toBe(model.has(other));
            expect(users.get(other)).toBe(model.get(other));
          }
        }
      }),
    );
  });

  it("gives a copy from values(): a user that leaves while it is read leaves the rest to be read", () => {
    const users = new LinkUsers();
    const [a, b, c] = [user("a"), user("b"), user("c")];
    users.set("a", a);
    users.set("b", b);
    users.set("c", c);
    const seen: LinkUser[] = [];
    for (const u of users.values()) {
      seen.push(u);
      users.delete("a");
      users.delete("b");
    }
    expect(seen).toEqual([a, b, c]);
    expect(users.values()).toEqual([c]);
  });
});
