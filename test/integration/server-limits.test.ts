/**
 * The shipped server (src/server, here as the double, whatever server the
 * run uses) holds a peer that pipelines requests and never reads its replies
 * as dflockd does: it waits for the peer to read, at most --write-timeout, and
 * then drops the connection, instead of piling replies up in memory.
 */
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DoubleServer, startDouble } from "../double/server.ts";
import { until } from "./helpers.ts";

describe("a peer that never reads its replies", () => {
  let server: DoubleServer;
  let holder: net.Socket;
  beforeAll(async () => {
    server = await startDouble(["--write-timeout", "1", "--max-locks", "1000"]);
    // 300 held keys make each stats reply about 30 KB.
    holder = net.connect(server.port, server.host);
    await new Promise((resolve) => holder.once("connect", resolve));
    let replies = 0;
    holder.on("data", (d: Buffer) => {
      replies += d.toString().split("\n").length - 1;
    });
    holder.write(Array.from({ length: 300 }, (_, i) => `l\nheld-${i}\n0\n`).join(""));
    await until(() => replies === 300, 10_000, "300 grants");
  });
  afterAll(async () => {
    holder?.destroy();
    await server?.stop();
  });

  it("is dropped after --write-timeout once its replies back up, and the server stops answering it", async () => {
    const reader = net.connect(server.port, server.host);
    await new Promise((resolve) => reader.once("connect", resolve));
    reader.pause(); // reads nothing
    reader.on("error", () => {});
    reader.write("stats\n_\n\n".repeat(4_000)); // about 120 MB of replies if all were made
    await until(() => server.connections() === 1, 20_000, "the reader dropped");
    expect(server.connections()).toBe(1); // the holder remains
    reader.destroy();
  });
});
