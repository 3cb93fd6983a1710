/**
 * The dflockd-compatible server's listener on Bun. Placeholder: `node:net`
 * until the `Bun.listen` listener lands.
 *
 * @module
 */
export { nodeListen as bunListen } from "../node/listen.ts";
