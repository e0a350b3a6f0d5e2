// The one public entry point of lapinmq: every export by name.
export type { BackoffOptions, ConnectionOptions, FastPath, RecoveryOptions, TlsOptions } from './config.ts'
export { redactUrl } from './config.ts'
export type { ConnectionEvents, ConnectionState, QueueInfo } from './connection/connection.ts'
export { Connection } from './connection/connection.ts'
export type { ConsumerEvents } from './consumer/consumer.ts'
export { Consumer } from './consumer/consumer.ts'
export { Message, MessageStatus } from './consumer/message.ts'
export type {
  ConsumerOptions,
  TaskFunction,
  TaskTimeoutAction,
  TaskTimeoutInfo,
  WorkerMessage,
  WorkerTaskFunction,
} from './consumer/options.ts'
export type { AmqpReplyCodeName, LapinErrorCode } from './errors.ts'
export {
  ConfirmTimeoutError,
  ConnectionClosedError,
  LapinError,
  PublishNackedError,
  UnroutableError,
} from './errors.ts'
export type { MessageProperties } from './properties.ts'
export type { PublishCallbacks, PublisherOptions, SendOptions } from './publisher/options.ts'
export type { PublisherEvents, PublisherState } from './publisher/publisher.ts'
export { Publisher } from './publisher/publisher.ts'
export { waitForSigterm } from './signals.ts'
export type { Logger } from './util/logger.ts'
