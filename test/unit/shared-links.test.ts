/**
 * One server's shared connections (src/shared-links.ts): which keys are on
 * them, and which link has room, kept as users join and leave and as links
 * are listed and unlisted; `find()` answers at once when none has room.
 */
import { describe, expect, it } from "vitest";
import { type Link, LinkUsers } from "../../src/link.ts";
import { MAX_SHARED, SharedLinks } from "../../src/shared-links.ts";

/** A link with `n` users k0..k(n-1) (only what SharedLinks reads). */
function link(n: number, prefix = "k"): Link {
  const users = new LinkUsers();
  for (let i = 0; i < n; i++) users.set(`${prefix}${i}`, { linkClosed() {} });
  return { users, slot: -1, exclusive: false, conn: { closed: false } } as unknown as Link;
}

function join(s: SharedLinks, l: Link, id: string): void {
  l.users.set(id, { linkClosed() {} });
  s.joined(l, id);
}

function leave(s: SharedLinks, l: Link, id: string): void {
  l.users.delete(id);
  s.left(l, id);
}

describe("SharedLinks", () => {
  it("knows the keys on its links, through joins, leaves, listing and unlisting", () => {
    const s = new SharedLinks();
    const a = link(2, "a");
    s.list(a);
    expect(s.has("a0") && s.has("a1")).toBe(true);
    join(s, a, "x");
    const b = link(1, "b");
    s.list(b);
    join(s, b, "x");
    leave(s, a, "x");
    expect(s.has("x")).toBe(true);
    s.unlist(b);
    expect(s.has("x")).toBe(false);
    expect(s.has("b0")).toBe(false);
    expect(s.size).toBe(1);
    expect(b.slot).toBe(-1);
  });

  it("finds a link with room, newest first, skipping full ones and those the key is on", () => {
    const s = new SharedLinks();
    const old = link(1, "o");
    const full = link(MAX_SHARED, "f");
    s.list(old);
    s.list(full);
    expect(s.find("new")).toBe(old);
    expect(s.find("o0")).toBeUndefined();
    // Filled up: none has room.
    for (let i = 1; i < MAX_SHARED; i++) join(s, old, `o${i}`);
    expect(s.find("new")).toBeUndefined();
    // One leaves the full one: it has room again.
    leave(s, full, "f7");
    expect(s.find("new")).toBe(full);
    s.unlist(full);
    expect(s.find("new")).toBeUndefined();
    leave(s, old, "o3");
    expect(s.find("new")).toBe(old);
  });

  it("unlists and uncounts only a link it lists (a stale slot from another server entry moves nothing)", () => {
    const old = new SharedLinks();
    const stale = link(1, "s");
    old.list(stale);
    const s = new SharedLinks();
    const mine = link(1, "m");
    s.list(mine);
    expect(s.holds(stale)).toBe(false);
    s.unlist(stale);
    expect(stale.slot).toBe(-1);
    expect(s.size).toBe(1);
    expect(s.has("m0")).toBe(true);
    expect(s.find("new")).toBe(mine);
  });

  it("with every link full, find() looks at none of them", () => {
    const s = new SharedLinks();
    const links = Array.from({ length: 100 }, (_, i) => link(MAX_SHARED, `l${i}-`));
    for (const l of links) s.list(l);
    let looked = 0;
    for (const l of links) {
      const users = l.users;
      Object.defineProperty(l, "users", {
        get() {
          looked++;
          return users;
        },
      });
    }
    expect(s.find("new")).toBeUndefined();
    expect(looked).toBe(0);
  });
});
