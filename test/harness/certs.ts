/**
 * Throwaway certificates for TLS tests, made with the `openssl` command at
 * test time: a CA, a server certificate it signs (subjectAltName localhost and
 * 127.0.0.1), and an unrelated second CA for "wrong CA" cases. Their
 * directory is removed when the process that made it ends.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onProcessEnd } from "./process-end.ts";

export interface TestCerts {
  dir: string;
  /** PEM of the CA that signed the server certificate. */
  ca: string;
  /** PEM of an unrelated CA. */
  otherCa: string;
  /** Paths for the server's --tls-cert / --tls-key. */
  certFile: string;
  keyFile: string;
  /** PEM of the server certificate and key (for scripted servers). */
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    throw new Error(
      `openssl failed (${args.slice(0, 2).join(" ")}): ${String((err as { stderr?: Buffer }).stderr ?? err)}\n` +
        "TLS tests need the openssl command line tool (Debian: apt-get install openssl).",
    );
  }
}

let cached: TestCerts | undefined;

/** Create (once per process) the certificates for TLS tests. */
export function testCerts(): TestCerts {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), "dflockd-certs-"));
  // Removed when this process ends, not sooner: servers started by tests may read the files until then.
  onProcessEnd(() => rmSync(dir, { recursive: true, force: true }));
  const subj = (cn: string) => ["-subj", `/CN=${cn}`];
  for (const ca of ["ca", "other-ca"]) {
    openssl(
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        `${ca}.key`,
        "-out",
        `${ca}.pem`,
        ...subj(`dflockd-client test ${ca}`),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ],
      dir,
    );
  }
  openssl(
    [
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
      ...subj("localhost"),
    ],
    dir,
  );
  writeFileSync(
    join(dir, "ext.cnf"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
      "-out",
      "server.pem",
    ],
    dir,
  );
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  cached = {
    dir,
    ca: read("ca.pem"),
    otherCa: read("other-ca.pem"),
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server.key"),
    cert: read("server.pem"),
    key: read("server.key"),
  };
  return cached;
}
