// A *scripted fake server* for adapter tests: it is not dflockd. It sends the
// exact bytes a scenario needs, for what a real server cannot be made to do
// (bytes split at chosen places, malformed replies, stalls, hang-ups). It runs
// in its own Node process so the process under test can have node:net broken.
//
// Usage: node scripted-server.mjs <scenario>   (prints the port, then serves)
// Environment: SCRIPTED_TLS_CERT / SCRIPTED_TLS_KEY (PEM files) serve TLS;
// SCRIPTED_AUTH requires "auth _ <secret>" first, as dflockd's --auth-token does.
import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";

const scenario = process.argv[2] ?? "ok";
const TOKEN = "0123456789abcdef0123456789abcdef";

async function trickle(sock, text) {
  for (const byte of Buffer.from(text)) {
    if (sock.destroyed) return;
    await new Promise((r) => sock.write(Buffer.from([byte]), r));
    await new Promise((r) => setImmediate(r));
  }
}

// "deaf": releases whose keys must be `${n}:` and then 120 × "é", n counting from 0 per connection.
const DEAF_TAIL = Buffer.from(`:${"é".repeat(120)}`).toString("latin1");

function reply(req, sock) {
  const [cmd, key] = req;
  switch (scenario) {
    case "deaf": {
      const n = sock.deafCount++;
      return sock.write(cmd === "r" && key === `${n}${DEAF_TAIL}` && req[2] === TOKEN ? "ok\n" : `error bad ${n}\n`);
    }
    case "malformed":
      return sock.write("ok not-a-lease\n");
    case "stall":
      // Grants the lease asked for (`l key timeout lease`); never answers anything else.
      if (cmd === "l") sock.write(`ok ${TOKEN} ${req[2]?.split(" ")[1] ?? 30}\n`);
      return;
    case "hangup":
      if (cmd === "l") {
        sock.write(`ok ${TOKEN} 30\n`);
        setImmediate(() => sock.destroy());
      }
      return;
    case "trickle":
      if (cmd === "stats") {
        return trickle(
          sock,
          'ok {"connections":1,"locks":[{"key":"ключ🔒","owner_conn_id":1,"lease_expires_in_s":3,"waiters":0}],"semaphores":null,"idle_locks":null,"idle_semaphores":null}\r\n',
        );
      }
      return trickle(sock, cmd === "r" ? "ok\r\n" : `ok ${TOKEN} 2\r\n`);
    default:
      // "ok": grants everything (key "busy" times out), answers renew, release and stats;
      // drops the connection on a renew of key "drop".
      if (cmd === "l" || cmd === "w" || cmd === "sl" || cmd === "sw") {
        return sock.write(key === "busy" ? "timeout\n" : `ok ${TOKEN} 2\n`);
      }
      if (cmd === "e" || cmd === "se") return sock.write("queued\n");
      if (cmd === "r" || cmd === "sr") return sock.write("ok\n");
      if (cmd === "n" || cmd === "sn") return key === "drop" ? sock.destroy() : sock.write("ok 2\n");
      if (cmd === "stats") return sock.write('ok {"connections":7,"locks":[],"semaphores":[]}\n');
      return sock.write("error\n");
  }
}

const secret = process.env.SCRIPTED_AUTH;

function serve(sock) {
  sock.setNoDelay?.(true);
  sock.on("error", () => {});
  if (scenario === "silent") return; // accept, then never answer anything
  if (scenario === "deaf") {
    // Read nothing until the test writes "resume" to stdin, so the client's writes back up.
    sock.deafCount = 0;
    sock.pause();
    deaf.push(sock);
  }
  let buf = "";
  let authed = secret === undefined;
  sock.on("data", (d) => {
    buf += d.toString("latin1");
    // Like dflockd: a line over 256 bytes gets "error" and the connection is closed.
    if (buf.split("\n").some((l) => l.length > 256)) {
      sock.end("error\n");
      return;
    }
    let lines = buf.split("\n");
    while (lines.length >= 4) {
      const req = lines.slice(0, 3);
      lines = lines.slice(3);
      if (!authed) {
        if (req[0] === "auth" && req[2] === secret) {
          authed = true;
          sock.write("ok\n");
        } else {
          sock.write("error_auth\n");
          setTimeout(() => sock.destroy(), 100);
          return;
        }
        continue;
      }
      reply(req, sock);
    }
    buf = lines.join("\n");
  });
}

const server = process.env.SCRIPTED_TLS_CERT
  ? tls.createServer(
      { cert: readFileSync(process.env.SCRIPTED_TLS_CERT), key: readFileSync(process.env.SCRIPTED_TLS_KEY) },
      serve,
    )
  : net.createServer(serve);
server.on("tlsClientError", () => {});
server.listen(0, process.env.SCRIPTED_HOST ?? "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
const deaf = [];
process.stdin.on("data", (d) => {
  if (String(d).includes("resume")) for (const sock of deaf.splice(0)) sock.resume();
});
// Exit with the parent.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
