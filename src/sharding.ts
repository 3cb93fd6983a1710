/**
 * Mapping keys to servers.
 *
 * @module
 */

/**
 * Chooses which of `numServers` servers a key lives on. Must return a whole
 * number in `[0, numServers)`; anything else is rejected with an
 * {@link InvalidArgumentError} before a connection is made.
 *
 * @example
 * ```ts
 * import { DistributedLock, type ShardingStrategy } from "dflockd-client";
 *
 * const firstServer: ShardingStrategy = (_key, _numServers) => 0;
 * const lock = new DistributedLock({
 *   key: "k",
 *   servers: [["127.0.0.1", 6388], ["127.0.0.1", 6389]],
 *   shardingStrategy: firstServer,
 * });
 * ```
 */
export type ShardingStrategy = (key: string, numServers: number) => number;

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32 (IEEE 802.3, as in zlib) of a string's UTF-8 bytes, unsigned.
 * Computed straight from UTF-16 without an intermediate byte array.
 */
export function crc32(text: string): number {
  let crc = 0xffffffff;
  const add = (byte: number): void => {
    crc = (TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  };
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      add(c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const lo = text.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      } else c = 0xfffd;
    } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x800) {
      add(0xc0 | (c >> 6));
    } else if (c < 0x10000) {
      add(0xe0 | (c >> 12));
      add(0x80 | ((c >> 6) & 0x3f));
    } else {
      add(0xf0 | (c >> 18));
      add(0x80 | ((c >> 12) & 0x3f));
      add(0x80 | ((c >> 6) & 0x3f));
    }
    add(0x80 | (c & 0x3f));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * The default {@link ShardingStrategy}: CRC-32 of the key's UTF-8 bytes modulo
 * `numServers`. Equals Python's `zlib.crc32(key.encode()) % numServers` and the
 * other dflockd clients, so every client sends a key to the same server.
 *
 * @param key The lock or semaphore key.
 * @param numServers How many servers there are (>= 1).
 * @returns The index of the server for `key`.
 * @example
 * ```ts
 * import { stableHashShard } from "dflockd-client";
 *
 * stableHashShard("my-job", 3); // 2813030800 % 3 === 1
 * ```
 */
export function stableHashShard(key: string, numServers: number): number {
  return crc32(key) % numServers;
}
