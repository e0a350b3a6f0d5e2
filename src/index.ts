// The one public entry point of lapinmq: every export by name.
export type { BackoffOptions, ConnectionOptions, FastPath, RecoveryOptions, TlsOptions } from './config.js'
export { redactUrl } from './config.js'
export type { ConnectionEvents, ConnectionState, QueueInfo } from './connection/connection.js'
export { Connection } from './connection/connection.js'
export type { ConnectionHealth, ConnectionPoolHealth, HealthError } from './connection/health.js'
export type { ConnectionPoolOptions, PooledConnectionInfo } from './connection/pool.js'
export { ConnectionPool } from './connection/pool.js'
export type { ConsumerEvents } from './consumer/consumer.js'
export { Consumer } from './consumer/consumer.js'
export { Message, MessageStatus } from './consumer/message.js'
export type {
  ConsumerOptions,
  TaskFunction,
  TaskTimeoutAction,
  TaskTimeoutInfo,
  WorkerMessage,
  WorkerReply,
  WorkerTaskFunction,
} from './consumer/options.js'
export type {
  InferSchemaOutput,
  InvalidMessageInfo,
  InvalidMessageIssue,
  StandardSchemaFailure,
  StandardSchemaIssue,
  StandardSchemaPathSegment,
  StandardSchemaProps,
  StandardSchemaResult,
  StandardSchemaSuccess,
  StandardSchemaTypes,
  StandardSchemaV1,
} from './consumer/schema.js'
export type { QueueUnavailableInfo } from './consumer/unavailable.js'
export type { AmqpReplyCodeName, LapinErrorCode } from './errors.js'
export {
  ConfirmTimeoutError,
  ConnectionClosedError,
  LapinError,
  PublishNackedError,
  UnroutableError,
} from './errors.js'
export type { MessageProperties } from './properties.js'
export type { PublishCallbacks, PublisherOptions, SendDefaults, SendOptions } from './publisher/options.js'
export type { PublisherEvents, PublisherState } from './publisher/publisher.js'
export { Publisher } from './publisher/publisher.js'
export type { RetryOptions } from './retry/options.js'
export type { CallOptions, RpcClientEvents, RpcClientOptions, RpcTarget } from './rpc/client.js'
export { RpcClient } from './rpc/client.js'
export type { ReplyOptions } from './rpc/replier.js'
export { RpcReply } from './rpc/reply.js'
export { waitForSigterm } from './signals.js'
export type {
  ConnectionStats,
  ConsumerStats,
  DurationStats,
  PublisherStats,
  RpcClientStats,
} from './telemetry/stats.js'
export type {
  BindingDeclaration,
  ExchangeBinding,
  ExchangeDeclaration,
  ExchangeType,
  QueueBinding,
  QueueDeclaration,
  QueueOverflow,
  QueueType,
  Topology,
} from './topology/topology.js'
export type { Logger } from './util/logger.js'
