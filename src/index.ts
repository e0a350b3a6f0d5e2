// The one public entry point of lapinmq: every export by name.
export type { ConnectionOptions, TlsOptions } from './config.ts'
export { redactUrl } from './config.ts'
export type { ConnectionEvents, ConnectionState } from './connection.ts'
export { Connection } from './connection.ts'
export type { ConsumerEvents } from './consumer.ts'
export { Consumer } from './consumer.ts'
export type {
  ConsumerOptions,
  TaskFunction,
  TaskTimeoutAction,
  TaskTimeoutInfo,
  WorkerMessage,
  WorkerTaskFunction,
} from './consumer-options.ts'
export {
  ConfirmTimeoutError,
  ConnectionClosedError,
  LapinError,
  PublishNackedError,
  UnroutableError,
} from './errors.ts'
export type { Logger } from './internal/logger.ts'
export { Message, MessageStatus } from './message.ts'
export type { PublishCallbacks, SendOptions } from './publish-options.ts'
export { Publisher } from './publisher.ts'
export type { PublisherOptions } from './publisher-options.ts'
export { waitForSigterm } from './signals.ts'
