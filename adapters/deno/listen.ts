/**
 * The dflockd-compatible server's listener on Deno. Placeholder: `node:net`
 * until the `Deno.listen` listener lands.
 *
 * @module
 */
export { nodeListen as denoListen } from "../node/listen.ts";
