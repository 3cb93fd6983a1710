/**
 * The runtime-independent public API of dflockd-client. Runtime entry points
 * (`mod.ts`, `adapters/node|bun|deno`) offer their runtime as the default
 * (the first one loaded stays) and re-export everything here.
 *
 * @module
 */

export type { NodeSocketLike, SocketLike } from "./adopt.ts";
export {
  type ClientLockOptions,
  type ClientOptions,
  DflockdClient,
  type ServerStats,
} from "./client.ts";
export { type CloseInfo, Connection } from "./connection.ts";
export {
  AcquireTimeoutError,
  AuthError,
  ConnectionError,
  InvalidArgumentError,
  LockError,
  type LockErrorCode,
  LockLostError,
  ProtocolError,
  ServerError,
} from "./errors.ts";
export { fenceOfToken, parseFence } from "./fence.ts";
export { HeldLock } from "./held.ts";
export { HeldLocks } from "./held-locks.ts";
export type { AbandonedEvent, HeldEvent, LockEvent, LockHooks, LostEvent, WaitingEvent } from "./hooks.ts";
export { NotLeaderError } from "./leader.ts";
export {
  acquire,
  enqueue,
  ping,
  release,
  renew,
  type StatsOptions,
  semAcquire,
  semEnqueue,
  semRelease,
  semRenew,
  semWaitForLock,
  stats,
  waitForLock,
} from "./lowlevel.ts";
export type { LeaseState } from "./machine.ts";
export { LimitMismatchError } from "./mismatch.ts";
export type { LockSpec, MultiLockOptions } from "./multi.ts";
export { type ConnectOptions, connect, type TlsOptions } from "./open.ts";
export { closeIdleConnections } from "./pool.ts";
export {
  type AcquireOptions,
  DistributedLock,
  DistributedPrimitive,
  DistributedSemaphore,
  type EnqueueStatus,
  type LockOptions,
  type LockSummary,
  type SemaphoreOptions,
} from "./primitive.ts";
export type {
  EnqueueResult,
  Grant,
  Latin1Decoder,
  Stats,
  StatsIdle,
  StatsLock,
  StatsSemaphore,
} from "./protocol.ts";
export type { ServerAddress } from "./servers.ts";
export { type ShardingStrategy, stableHashShard } from "./sharding.ts";
export type {
  ByteStream,
  DialRequest,
  DialStep,
  Runtime,
  StreamHandlers,
  TlsSettings,
} from "./transport.ts";
