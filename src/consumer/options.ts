// The options of a Consumer, their defaults and their checks: everything is validated here, in the
// constructor, before anything reaches the broker.
import { isAbsolute, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Connection } from '../connection/connection.js'
import type { ConnectionPool } from '../connection/pool.js'
import type { MessageProperties } from '../properties.js'
import { type ResolvedRetry, type RetryOptions, resolveRetry } from '../retry/options.js'
import type { ReplyOptions } from '../rpc/replier.js'
import { checkTracing } from '../telemetry/tracing.js'
import {
  checkDeclarableName,
  type ExchangeType,
  planTopology,
  type QueueType,
  type Topology,
  type TopologyPlan,
} from '../topology/topology.js'
import type { Logger } from '../util/logger.js'
import { checkInt, checkShortString, checkTable } from '../util/validate.js'
import type { Message, MessageStatus } from './message.js'
import { isStandardSchema, type StandardSchemaV1 } from './schema.js'

/**
 * A task: gets a message, returns (or resolves to) a {@link MessageStatus}. `T` is the type of
 * `message.data` (the consumer's `schema` output).
 */
export type TaskFunction<T = unknown> = (message: Message<T>) => MessageStatus | Promise<MessageStatus>

/**
 * What a task running in a worker thread gets (`workerThreads`): a plain copy of the message. It
 * cannot be settled from the worker: the status the task returns decides the ack, on the main thread.
 */
export interface WorkerMessage {
  /** The body, moved (not copied) to the worker. */
  body: Buffer
  /** AMQP basic properties as the broker sent them. */
  properties: MessageProperties
  /** Application headers (`properties.headers`, or `{}`). */
  headers: Record<string, unknown>
  /** True when the broker delivered this message before. */
  redelivered: boolean
  /** The routing key it was published with. */
  routingKey: string
  /** The exchange it was published to (`''` for the default exchange). */
  exchange: string
  /** The delivery tag on the channel that delivered it. */
  deliveryTag: number
  /** 1 on the first delivery, one more per failure counted (see `Message.attempt`). */
  attempt: number
}

/**
 * The default export of a `taskModule`. It may return `SUCCESS`, `FAIL_RETRY_LATER` or
 * `FAIL_DO_NOT_RETRY` (as the plain strings `'success'`, ...), or a {@link WorkerReply} to answer
 * the request; `HANDLED_VIA_CALLBACK` is not available in a worker (it counts as a failure,
 * retried later, and is reported as an `error`).
 */
export type WorkerTaskFunction = (
  message: WorkerMessage,
) => MessageStatus | WorkerReply | Promise<MessageStatus | WorkerReply>

/**
 * A worker-thread task's answer to a request (a message with `replyTo`): the main thread sends the
 * reply as `message.reply()` (`reply`) or `message.replyJson()` (`replyJson`) would, and once the
 * broker has taken it, settles the message by `status`. A reply that cannot be sent (the connection
 * was lost) counts as `FAIL_RETRY_LATER`; a message without `replyTo` is settled by `status` and
 * the missing `replyTo` reported as an `error` (code `NO_REPLY_TO`).
 *
 * @example
 * ```ts
 * // tasks/price.ts, run with workerThreads
 * export default function price(message: WorkerMessage): WorkerReply {
 *   return { replyJson: { price: computePrice(message.body) } }
 * }
 * ```
 */
export type WorkerReply = (
  | {
      /** The reply's body: a string (sent as UTF-8) or bytes. */
      reply: string | Uint8Array
      /** Not with `reply`. */
      replyJson?: undefined
    }
  | {
      /** A value sent as the reply's JSON body (`contentType: 'application/json'`). */
      replyJson: unknown
      /** Not with `replyJson`. */
      reply?: undefined
    }
) & {
  /** How the request is settled once the reply is taken. @default 'success' */
  status?: MessageStatus
  /** The reply's properties. */
  options?: ReplyOptions
}

/** What happens to a message whose task ran past `taskTimeout`: requeued, or rejected without requeue. */
export type TaskTimeoutAction = 'requeue' | 'reject'

/**
 * Options of a {@link Consumer}. Give either `taskFunction`, or `taskModule` with `workerThreads`.
 * `T` is the type of `message.data`, inferred from `schema`.
 */
export interface ConsumerOptions<T = unknown> {
  /** Queue to consume; declared durable if missing. `''` declares a temporary, exclusive, server-named queue. */
  queueName: string
  /** Called for each message, on the main thread; its result decides the ack (see {@link MessageStatus}). */
  // `T` as a spot TypeScript does not infer it from (`NoInfer`, written so that TypeScript before
  // 5.4 reads it): the message type comes from `schema` alone, so a task annotated
  // `Message<Order>` on a consumer without one (whose `data` is undefined) does not compile.
  taskFunction?: TaskFunction<[T][T extends unknown ? 0 : never]>
  /**
   * A Standard Schema v1 validator (zod ≥ 3.24, valibot ≥ 1, arktype, ...) for the JSON body. Each
   * body is parsed and validated before the task, which gets the schema's output as
   * `message.data`. A body that is not JSON, or that the schema refuses, is rejected without
   * requeue (dead-lettered when the queue has a dead-letter exchange), the task is not called, and
   * an `invalidMessage` event reports the issues (never the body). Not with `taskModule`: a worker
   * validates in its own thread.
   * @default none: bodies reach the task unparsed, `message.data` is `undefined`
   */
  schema?: StandardSchemaV1<unknown, T>
  /**
   * Path (absolute, or relative to the working directory) or `file:` URL of a module whose default
   * export is a {@link WorkerTaskFunction}, run in a pool of `workerThreads` worker threads (needs
   * the optional peer dependency `piscina`). Excludes `taskFunction`.
   */
  taskModule?: string | URL
  /**
   * Worker threads running `taskModule` (1..1024): CPU-bound tasks never block the event loop, so
   * heartbeats keep flowing. Requires `taskModule`.
   * @default none: tasks run on the main thread
   */
  workerThreads?: number
  /**
   * Messages processed at once.
   * @default 1, or `workerThreads` in worker mode
   */
  concurrency?: number
  /**
   * Unacked messages the broker may send ahead (1..65535).
   * @default concurrency
   */
  prefetch?: number
  /**
   * Deadline of one task, in ms. A task still running then has its message settled per
   * `onTaskTimeout`, its late result ignored, its concurrency slot freed, and a `taskTimeout` event
   * emitted; in worker mode its worker thread is terminated. Keep it below the broker's
   * `consumer_timeout` (30 min by default), past which the broker closes the whole channel and
   * requeues every message on it. `0` or `Infinity` disables it. A main-thread task cannot be
   * stopped: it runs on, unseen. A task that returns its status synchronously is never timed out.
   * @default 1500000 (25 minutes)
   */
  taskTimeout?: number
  /**
   * What happens to a message whose task exceeded `taskTimeout`: `'requeue'` (tried again, as
   * `FAIL_RETRY_LATER`: along the `retry` ladder, or requeued after the backoff) or `'reject'`
   * (given up, as `FAIL_DO_NOT_RETRY`).
   * @default 'requeue'
   */
  onTaskTimeout?: TaskTimeoutAction
  /**
   * A retry ladder: a message whose task failed (`FAIL_RETRY_LATER`, a throw, a rejection, a
   * timeout) is copied, with a confirm, to the delay queue `<queue>.retry.<ms>` of its attempt and
   * then acked; the broker brings it back after the delay. After the last delay, or at once on
   * `FAIL_DO_NOT_RETRY`, it goes to the dead-letter queue (default `<queue>.dead`). The copies carry
   * `x-lapinmq-attempt` (failures so far), `x-lapinmq-first-failure`, `x-lapinmq-last-error` and the
   * original exchange and routing key. The ladder's queues are declared with the consumer's.
   * @default none: a failed message is requeued after the backoff (`requeueBackoff`)
   */
  retry?: RetryOptions
  /**
   * Without `retry`: a message to retry is held for a backoff before it is requeued (100 ms,
   * doubling to 5 s while failures follow one another, reset by a success), while the messages
   * behind it go on. `false` requeues it at once, as AMQP does (a message that always fails then
   * comes back thousands of times a second).
   * @default true
   */
  requeueBackoff?: boolean
  /** An existing exchange to bind the queue to. */
  exchange?: string
  /**
   * Routing keys to bind the queue with, when `exchange` is given. Fanout and headers exchanges ignore the key.
   * @default ['']
   */
  bindingKeys?: readonly string[]
  /**
   * Arguments of each binding to `exchange`, e.g. `{ 'x-match': 'all', format: 'pdf' }` for a
   * headers exchange (whose bindings match on headers, not keys). Checked like `queueArgs`.
   * @default none
   */
  bindingArguments?: Record<string, unknown>
  /**
   * `false` consumes the queue as it was declared (by operators, or another service): it is only
   * checked, and `start()` rejects with `NOT_FOUND` when it does not exist. `queueArgs` is then unused.
   * @default true: the queue is declared (durable) if missing
   */
  declareQueue?: boolean
  /** Queue arguments for the declare, e.g. `{ 'x-queue-type': 'quorum' }` or a dead-letter exchange. */
  queueArgs?: Record<string, unknown>
  /**
   * The connection to open the channel on, or a pool: the channel then goes to its least-loaded
   * connection, and stays there until `stop()`.
   * @default the process-wide shared consuming connection
   */
  connection?: Connection | ConnectionPool
  /** Logger for this consumer. @default the connection's logger (silent unless given) */
  logger?: Logger
  /**
   * Exchanges, queues and bindings this consumer needs, declared on its channel at `start()` and
   * again each time the channel is reopened (after a recovery too), before its own queue: the
   * consumer's queue can be bound to an exchange declared here.
   * @default none: nothing is declared but the consumer's queue
   */
  topology?: Topology
  /**
   * The type of the consumer's queue: shorthand for `queueArgs['x-queue-type']` (unused with
   * `declareQueue: false`). A quorum queue or a stream cannot be temporary (`queueName: ''`).
   * @default none: the broker's default (classic)
   */
  queueType?: QueueType
  /**
   * Declares `exchange` (durable) with this type before binding the queue to it.
   * @default none: `exchange` must exist
   */
  exchangeType?: ExchangeType
  /**
   * Consumer priority (`x-priority`): while consumers of higher priority have room (prefetch), the
   * broker delivers to them only. Not available on a stream (the broker refuses it).
   * @default 0
   */
  priority?: number
  /**
   * Consume the queue exclusively: `start()` fails with `ACCESS_REFUSED` while another consumer
   * holds the queue, and no other consumer can subscribe while this one runs.
   * @default false
   */
  exclusive?: boolean
  /**
   * The start of the consumer tags, to which lapinmq appends a unique suffix (each reopened
   * channel gets a new tag); tags show in the management UI and `rabbitmqctl list_consumers`.
   * @default none: the broker names the consumer (`amq.ctag-…`)
   */
  consumerTagPrefix?: string
  /**
   * Where a consumer of a stream starts reading (`x-stream-offset`): `'first'` (the oldest message
   * kept), `'last'` (the last chunk), `'next'` (only new messages), an offset (a number), or a
   * `Date` (messages from that time on). Only for a stream (`queueType: 'stream'`, or one declared
   * elsewhere with `declareQueue: false`). A reopened channel starts from the same offset again.
   * @default 'next' (the broker's)
   */
  streamOffset?: 'first' | 'last' | 'next' | number | Date
  /**
   * Trace each delivery with an OpenTelemetry CONSUMER span, a child of the context its headers
   * carry, ended when the message is settled; the task runs in it (see docs/tracing.md). `false`
   * turns it off for this consumer.
   * @default the connection's `tracing` (true unless set)
   */
  tracing?: boolean
}

/** What a `taskTimeout` event tells: the message's identity, never its body. */
export interface TaskTimeoutInfo {
  /** The delivery tag on the channel that delivered it. */
  deliveryTag: number
  /** The incarnation id of that channel (see `message.channelId`). */
  channelId: number
  /** Its `messageId` property, if it had one. */
  messageId: string | undefined
  /** Whether the message was a redelivery. */
  redelivered: boolean
  /** The deadline that passed, in ms. */
  timeoutMs: number
  /**
   * What was done: `'requeued'` (tried again: along the `retry` ladder, or requeued after the
   * backoff), `'rejected'` (given up: the dead-letter queue with `retry`), or `'none'` when the task
   * had already settled it.
   */
  action: 'requeued' | 'rejected' | 'none'
  /** True when the task ran in a worker thread (which was terminated). */
  inWorker: boolean
}

/** @internal The default `taskTimeout`: 25 minutes, below RabbitMQ's default `consumer_timeout` of 30. */
export const defaultTaskTimeout = 25 * 60_000

/** @internal Options checked, with their defaults applied. */
export interface ResolvedConsumerOptions {
  concurrency: number
  prefetch: number
  bindingKeys: readonly string[]
  bindingArguments: Record<string, unknown> | undefined
  /** 0: no deadline. */
  taskTimeout: number
  onTaskTimeout: TaskTimeoutAction
  /** Worker mode: the pool size and the task module's URL. */
  workers: { threads: number; taskModule: string } | undefined
  topology: TopologyPlan | undefined
  /** The queue's arguments (`queueArgs` with `queueType`). */
  queueArgs: Record<string, unknown> | undefined
  /** The retry ladder, checked and named. */
  retry: ResolvedRetry | undefined
  requeueBackoff: boolean
  /** `basic.consume`'s exclusive flag and arguments. */
  consume: { exclusive?: boolean; arguments?: Record<string, unknown> }
  /** The `tracing` option, checked; undefined: the connection's. */
  tracing: boolean | undefined
}

/** @internal Checks a Consumer's options (TypeError/RangeError naming the option) and applies the defaults. */
export function resolveConsumerOptions<T>(options: ConsumerOptions<T>): ResolvedConsumerOptions {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('Consumer options must be an object')
  checkShortString('queueName', options.queueName)
  if (options.queueName.startsWith('amq.')) {
    throw new RangeError("queueName must not start with 'amq.' (reserved by the broker)")
  }
  const workers = resolveWorkers(options)
  if (options.schema !== undefined) {
    if (!isStandardSchema(options.schema)) {
      throw new TypeError(
        'schema must be a Standard Schema v1 validator (zod ≥ 3.24, valibot ≥ 1, arktype...): an object with a ~standard property',
      )
    }
    if (workers) {
      throw new TypeError(
        'schema applies to taskFunction only: with taskModule, parse and validate the body in the worker (message.body)',
      )
    }
  }
  const concurrency = options.concurrency ?? workers?.threads ?? 1
  checkInt('concurrency', concurrency, 1, 65535)
  const prefetch = options.prefetch ?? concurrency
  checkInt('prefetch', prefetch, 1, 65535)
  if (options.exchange !== undefined) checkShortString('exchange', options.exchange)
  const bindingKeys = options.bindingKeys ?? ['']
  if (!Array.isArray(bindingKeys)) throw new TypeError('bindingKeys must be an array of strings')
  for (const key of bindingKeys) checkShortString('bindingKeys[]', key)
  if (options.queueArgs !== undefined) checkTable('queueArgs', options.queueArgs)
  if (options.bindingArguments !== undefined) {
    checkTable('bindingArguments', options.bindingArguments)
    if (options.exchange === undefined) throw new TypeError('bindingArguments needs an exchange to bind to')
  }
  if (options.declareQueue !== undefined && typeof options.declareQueue !== 'boolean') {
    throw new TypeError(`declareQueue must be a boolean, got ${typeof options.declareQueue}`)
  }
  if (options.declareQueue === false && options.queueName === '') {
    throw new TypeError("declareQueue: false needs a queueName (a temporary queue '' is always declared)")
  }
  const taskTimeout = options.taskTimeout ?? defaultTaskTimeout
  if (
    typeof taskTimeout !== 'number' ||
    !(taskTimeout === Number.POSITIVE_INFINITY || (Number.isInteger(taskTimeout) && taskTimeout >= 0)) ||
    (taskTimeout !== Number.POSITIVE_INFINITY && taskTimeout > 2 ** 31 - 1)
  ) {
    throw new RangeError(
      `taskTimeout must be an integer number of ms between 0 and ${2 ** 31 - 1}, or Infinity (0 and Infinity disable it), got ${String(taskTimeout)}`,
    )
  }
  const onTaskTimeout = options.onTaskTimeout ?? 'requeue'
  if (onTaskTimeout !== 'requeue' && onTaskTimeout !== 'reject') {
    throw new TypeError(`onTaskTimeout must be 'requeue' or 'reject', got ${String(onTaskTimeout)}`)
  }
  const declarations = resolveDeclarations(options)
  const { requeueBackoff = true } = options
  if (typeof requeueBackoff !== 'boolean') {
    throw new TypeError(`requeueBackoff must be a boolean, got ${typeof requeueBackoff}`)
  }
  return {
    retry: resolveConsumerRetry(options, declarations.queueArgs),
    requeueBackoff,
    concurrency,
    prefetch,
    bindingKeys,
    bindingArguments: options.bindingArguments === undefined ? undefined : { ...options.bindingArguments },
    taskTimeout: taskTimeout === Number.POSITIVE_INFINITY ? 0 : taskTimeout,
    onTaskTimeout,
    workers,
    ...declarations,
    tracing: checkTracing(options.tracing),
  }
}

/** `topology`, `queueType`, `exchangeType` and the consume arguments: checked, and mapped to AMQP's arguments. */
function resolveDeclarations<T>(
  options: ConsumerOptions<T>,
): Pick<ResolvedConsumerOptions, 'topology' | 'queueArgs' | 'consume'> {
  const topology = options.topology === undefined ? undefined : planTopology(options.topology, 'topology')
  let queueArgs = options.queueArgs
  const { queueType, exchangeType, priority, exclusive, consumerTagPrefix, streamOffset } = options
  if (queueType !== undefined) {
    if (queueType !== 'classic' && queueType !== 'quorum' && queueType !== 'stream') {
      throw new TypeError(`queueType must be 'classic', 'quorum' or 'stream', got ${String(queueType)}`)
    }
    const given = queueArgs?.['x-queue-type']
    if (given !== undefined && given !== queueType) {
      throw new TypeError(`queueType '${queueType}' contradicts queueArgs['x-queue-type'] '${String(given)}'`)
    }
    if (options.queueName === '' && queueType !== 'classic') {
      throw new TypeError(`a ${queueType} queue cannot be temporary: give queueName`)
    }
    queueArgs = { ...queueArgs, 'x-queue-type': queueType }
  }
  if (exchangeType !== undefined) {
    if (!['direct', 'fanout', 'topic', 'headers'].includes(exchangeType)) {
      throw new TypeError(
        `exchangeType must be 'direct', 'fanout', 'topic' or 'headers', got ${String(exchangeType)}`,
      )
    }
    if (options.exchange === undefined)
      throw new TypeError('exchangeType needs exchange (the exchange to declare)')
    checkDeclarableName(options.exchange, 'exchange')
  }
  const args: Record<string, unknown> = {}
  if (priority !== undefined) {
    checkInt('priority', priority, -(2 ** 31), 2 ** 31 - 1)
    if (queueType === 'stream')
      throw new TypeError('priority is not available on a stream (the broker refuses x-priority)')
    args['x-priority'] = priority
  }
  if (streamOffset !== undefined) args['x-stream-offset'] = streamOffsetArgument(streamOffset)
  if (exclusive !== undefined && typeof exclusive !== 'boolean') {
    throw new TypeError(`exclusive must be a boolean, got ${typeof exclusive}`)
  }
  if (consumerTagPrefix !== undefined) {
    checkShortString('consumerTagPrefix', consumerTagPrefix)
    // Room for the unique suffix within AMQP's 255 bytes.
    if (Buffer.byteLength(consumerTagPrefix) > 200) {
      throw new RangeError('consumerTagPrefix must be at most 200 UTF-8 bytes (a unique suffix is appended)')
    }
  }
  const consume: ResolvedConsumerOptions['consume'] = {}
  if (exclusive) consume.exclusive = true
  if (Object.keys(args).length > 0) consume.arguments = args
  return { topology, queueArgs, consume }
}

/** `retry`, for the consumer's queue (quorum or not); refused on a stream, which cannot ack one message alone. */
function resolveConsumerRetry<T>(
  options: ConsumerOptions<T>,
  queueArgs: Record<string, unknown> | undefined,
): ResolvedRetry | undefined {
  if (options.retry === undefined) return undefined
  const type = queueArgs?.['x-queue-type']
  if (type === 'stream' || options.streamOffset !== undefined) {
    throw new TypeError(
      'retry is not for a stream: a retried message would be appended to it again, for every reader to see twice',
    )
  }
  return resolveRetry(options.retry, options.queueName, type === 'quorum')
}

/** `x-stream-offset` as the broker reads it: a name, an offset (long), or a timestamp (seconds). */
function streamOffsetArgument(offset: NonNullable<ConsumerOptions['streamOffset']>): unknown {
  if (offset === 'first' || offset === 'last' || offset === 'next') return offset
  if (offset instanceof Date) {
    const ms = offset.getTime()
    if (!(ms >= 0)) throw new RangeError('streamOffset must be a valid Date from 1970 on')
    return { '!': 'timestamp', value: Math.floor(ms / 1000) }
  }
  if (typeof offset === 'number') {
    checkInt('streamOffset', offset, 0, Number.MAX_SAFE_INTEGER)
    return { '!': 'long', value: offset }
  }
  throw new TypeError(
    `streamOffset must be 'first', 'last', 'next', an offset or a Date, got ${String(offset)}`,
  )
}

/** `taskFunction`, or `taskModule` + `workerThreads`: exactly one way to run tasks. */
function resolveWorkers<T>(options: ConsumerOptions<T>): ResolvedConsumerOptions['workers'] {
  const { taskFunction, taskModule, workerThreads } = options
  if (taskFunction !== undefined && taskModule !== undefined) {
    throw new TypeError('give either taskFunction or taskModule (with workerThreads), not both')
  }
  if (taskModule === undefined) {
    if (typeof taskFunction !== 'function') {
      throw new TypeError('taskFunction must be a function (or give taskModule with workerThreads)')
    }
    if (workerThreads !== undefined) throw new TypeError('workerThreads needs taskModule, not taskFunction')
    return undefined
  }
  if (workerThreads === undefined) throw new TypeError('taskModule needs workerThreads (1..1024)')
  checkInt('workerThreads', workerThreads, 1, 1024)
  return { threads: workerThreads, taskModule: taskModuleUrl(taskModule) }
}

/** A task module's `file:` URL (a path is taken relative to the working directory). */
function taskModuleUrl(taskModule: string | URL): string {
  if (taskModule instanceof URL) return taskModule.href
  if (typeof taskModule !== 'string' || taskModule === '') {
    throw new TypeError('taskModule must be a path or a file: URL')
  }
  if (/^[a-z][a-z0-9+.-]+:/i.test(taskModule) && !isAbsolute(taskModule)) return new URL(taskModule).href
  return pathToFileURL(resolve(taskModule)).href
}
