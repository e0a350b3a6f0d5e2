// The options of a Publisher and of each send, their defaults and their checks: everything is
// validated at the call, before anything reaches the broker.
import { inspect } from 'node:util'
import { type PublishOptions, plainPublishOptions } from '../amqp/channel-session.js'
import type { Connection } from '../connection/connection.js'
import type { ConnectionPool } from '../connection/pool.js'
import type { LapinError } from '../errors.js'
import { checkTracing } from '../telemetry/tracing.js'
import { planTopology, type Topology, type TopologyPlan } from '../topology/topology.js'
import type { Logger } from '../util/logger.js'
import { checkInt, checkShortString } from '../util/validate.js'

/** Options of a {@link Publisher}. */
export interface PublisherOptions {
  /**
   * `'sync'`: one unconfirmed message at a time, in order. `'async'`: a sliding window of
   * `maxInFlight` unconfirmed messages.
   */
  kind: 'sync' | 'async'
  /**
   * Most unconfirmed messages at once for `kind: 'async'` (always 1 for `'sync'`).
   * @default 1000
   */
  maxInFlight?: number
  /**
   * Deadline of a send in ms, from the call to the confirm (waiting for room included). Past it the
   * send rejects with `ConfirmTimeoutError`. `Infinity`: no deadline (a send then waits for its
   * confirm as long as the connection lives; `stop()` still ends it).
   * @default 30000
   */
  confirmTimeout?: number
  /**
   * The connection to open the channel on, or a pool: the channel then goes to its least-loaded
   * connection, and stays there until `stop()`.
   * @default the process-wide shared publishing connection
   */
  connection?: Connection | ConnectionPool
  /**
   * What to do with messages left unconfirmed when the connection (or channel) drops: `true`
   * publishes them again once it is back (at-least-once: the broker may have had some, so they can
   * arrive twice); `false` rejects them with `ConnectionClosedError`.
   * @default true
   */
  republish?: boolean
  /**
   * Send options applied under each send's own: a send's option wins, and `headers` are merged
   * (the send's keys winning). E.g. `{ mandatory: false }` for events that may have no subscriber
   * yet, or a `contentType` and `appId` for every message. Checked here as a send's options are;
   * `callbacks` belong to one send and are refused.
   * @default none: each send's options alone
   */
  defaults?: SendDefaults
  /**
   * Most sends waiting to be published (beyond the `maxInFlight` window), e.g. while the
   * connection recovers. A send beyond it rejects at once with code `BUFFER_FULL`; to wait for
   * room instead, `await publisher.waitForRoom()` before sending.
   * @default 10000
   */
  maxBuffered?: number
  /**
   * Most bytes of message bodies waiting to be published: a send that would go beyond it rejects
   * at once with `BUFFER_FULL` (a send is always taken when none waits, whatever its size).
   * @default 67108864 (64 MiB)
   */
  maxBufferedBytes?: number
  /**
   * Largest body a send takes: a bigger one rejects at once with code `MESSAGE_TOO_LARGE`, before
   * any byte is sent. Set it to the broker's `max_message_size` when that was changed.
   * @default 134217728 (128 MiB, RabbitMQ's default limit)
   */
  maxMessageSize?: number
  /**
   * `'reject'` (the only policy): a send made while the buffer is full rejects with `BUFFER_FULL`.
   * `'wait'` is refused: it let memory grow without bound.
   * @default 'reject'
   */
  whenBufferFull?: 'reject'
  /** Logger for this publisher. @default the connection's logger (silent unless given) */
  logger?: Logger
  /**
   * Exchanges, queues and bindings this publisher needs, declared on its channel at `start()` and
   * again each time the channel is reopened (after a recovery too), before any send goes out. A
   * declaration the broker refuses fails `start()`; on a reopen it is reported as an `error` event
   * and retried.
   * @default none: nothing is declared
   */
  topology?: Topology
  /**
   * Trace each send with an OpenTelemetry PRODUCER span whose context goes in the message's
   * headers (see docs/tracing.md); `false` turns it off for this publisher.
   * @default the connection's `tracing` (true unless set)
   */
  tracing?: boolean
}

/** Send options a {@link Publisher} applies under each send's own (`defaults`): every send option but `callbacks`. */
export type SendDefaults = Omit<SendOptions, 'callbacks'>

/** @internal A publisher's settings, checked, with their defaults. */
export interface PublisherSettings {
  kind: 'sync' | 'async'
  maxInFlight: number
  confirmTimeout: number
  republish: boolean
  /** A copy of `defaults`, checked; undefined when none were given. */
  defaults: SendDefaults | undefined
  maxBuffered: number
  maxBufferedBytes: number
  maxMessageSize: number
  topology: TopologyPlan | undefined
  /** The `tracing` option, checked; undefined: the connection's. */
  tracing: boolean | undefined
}

/** @internal Checks a publisher's options (TypeError/RangeError naming the option) and applies the defaults. */
export function resolvePublisherOptions(options: PublisherOptions): PublisherSettings {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError("Publisher options must be an object with kind 'sync' or 'async'")
  }
  const { kind } = options
  if (kind !== 'sync' && kind !== 'async') {
    throw new TypeError(`Publisher kind must be 'sync' or 'async', got ${inspect(kind)}`)
  }
  if (kind === 'sync' && options.maxInFlight !== undefined && options.maxInFlight !== 1) {
    throw new RangeError("maxInFlight is always 1 for kind 'sync'; use kind 'async' for a window")
  }
  const maxInFlight = kind === 'sync' ? 1 : (options.maxInFlight ?? 1000)
  checkInt('maxInFlight', maxInFlight, 1, 1_000_000)
  const confirmTimeout = options.confirmTimeout ?? 30_000
  if (confirmTimeout !== Number.POSITIVE_INFINITY) checkInt('confirmTimeout', confirmTimeout, 1, 2 ** 31 - 1)
  const maxBuffered = options.maxBuffered ?? 10_000
  checkInt('maxBuffered', maxBuffered, 0, 10_000_000)
  const maxBufferedBytes = options.maxBufferedBytes ?? 64 * 1024 * 1024
  checkInt('maxBufferedBytes', maxBufferedBytes, 0, Number.MAX_SAFE_INTEGER)
  const maxMessageSize = options.maxMessageSize ?? 128 * 1024 * 1024
  checkInt('maxMessageSize', maxMessageSize, 0, 512 * 1024 * 1024)
  const whenBufferFull: unknown = options.whenBufferFull
  if (whenBufferFull === 'wait') {
    throw new TypeError(
      "whenBufferFull 'wait' is not supported: it let memory grow without bound. Sends beyond maxBuffered / maxBufferedBytes reject with BUFFER_FULL; await publisher.waitForRoom() before each send to wait for room instead",
    )
  }
  if (whenBufferFull !== undefined && whenBufferFull !== 'reject') {
    throw new TypeError(`whenBufferFull must be 'reject', got ${inspect(whenBufferFull)}`)
  }
  return {
    kind,
    maxInFlight,
    confirmTimeout,
    republish: options.republish ?? true,
    defaults: resolveDefaults(options.defaults),
    maxBuffered,
    maxBufferedBytes,
    maxMessageSize,
    topology: options.topology === undefined ? undefined : planTopology(options.topology, 'topology'),
    tracing: checkTracing(options.tracing),
  }
}

/** Checks `defaults` as a send's options are checked, and copies them (a later change by the caller is not seen). */
function resolveDefaults(defaults: SendDefaults | undefined): SendDefaults | undefined {
  if (defaults === undefined) return undefined
  if (typeof defaults !== 'object' || defaults === null || Array.isArray(defaults)) {
    throw new TypeError('defaults must be an object of send options')
  }
  if ((defaults as SendOptions).callbacks !== undefined) {
    throw new TypeError('defaults cannot hold callbacks: they belong to one send; pass them in its options')
  }
  toPublishOptions(defaults)
  const copy: SendDefaults = { ...defaults }
  if (defaults.headers !== undefined) copy.headers = { ...defaults.headers }
  return copy
}

/**
 * @internal
 * A send's options over the publisher's `defaults`: the send's own values win (one it leaves
 * `undefined` is not set), and the headers of both are merged, the send's keys winning.
 */
export function withDefaults(defaults: SendDefaults, options: SendOptions): SendOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  const merged: Record<string, unknown> = { ...defaults }
  for (const key in options) {
    const value = options[key as keyof SendOptions]
    if (value !== undefined) merged[key] = value
  }
  const { headers } = options
  if (defaults.headers !== undefined && headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
      throw new TypeError('headers must be a plain object')
    }
    merged.headers = { ...defaults.headers, ...headers }
  }
  return merged as SendOptions
}

/** Called exactly once per message, on the same outcome as the send's promise. */
export interface PublishCallbacks {
  /** The broker confirmed the message. */
  ackCallback?: () => void
  /** The message was returned, nacked, timed out, or its channel closed first. */
  nackCallback?: (error: LapinError) => void
}

/** Per-message options of `sendMessage` / `sendMessageToQueue`. */
export interface SendOptions {
  /** Per-message TTL in milliseconds (AMQP `expiration`): a number, or the string of digits AMQP carries. */
  expiration?: number | string
  /** Application headers. */
  headers?: Record<string, unknown>
  /** Application message id. */
  messageId?: string
  /**
   * Persistent messages survive a broker restart in a durable queue.
   * @default true
   */
  persistent?: boolean
  /**
   * Return the message (`UnroutableError`) when no queue is bound for it.
   * @default true
   */
  mandatory?: boolean
  /** Callbacks called exactly once with the outcome. */
  callbacks?: PublishCallbacks
  /** MIME type of the body, e.g. `application/json`; lapinmq does not encode the body by it. */
  contentType?: string
  /** Encoding of the body, e.g. `gzip`; lapinmq does not encode the body by it. */
  contentEncoding?: string
  /** Ties a reply to its request. */
  correlationId?: string
  /** The queue a reply should go to. */
  replyTo?: string
  /** Seconds since the epoch, or a Date. */
  timestamp?: number | Date
  /** Application message type. */
  type?: string
  /** RabbitMQ checks it: anything but the connection's own user name closes the channel. */
  userId?: string
  /** The publishing application. */
  appId?: string
  /** 0..255; only meaningful on queues with `x-max-priority`. */
  priority?: number
}

/**
 * @internal
 * Checks a send's options and turns them into amqplib's publish options. It walks the keys the
 * caller set (usually two or three) rather than probing every known option: a probe for an absent
 * property of the caller's object, whose shape varies from call site to call site, is a slow
 * lookup, and twelve of them cost more than the rest of a publish.
 */
export function toPublishOptions(options: SendOptions | undefined): PublishOptions {
  if (options === undefined) return plainPublishOptions(true, true)
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  let persistent: unknown = true
  let mandatory: unknown = true
  let out: PublishOptions | undefined
  for (const key in options) {
    const value = options[key as keyof SendOptions]
    if (value === undefined) continue
    switch (key) {
      case 'persistent':
        checkBoolean('persistent', value)
        persistent = value
        break
      case 'mandatory':
        checkBoolean('mandatory', value)
        mandatory = value
        break
      case 'callbacks':
        checkCallbacks(value as PublishCallbacks)
        break
      case 'expiration':
        out ??= { persistent: true, mandatory: true }
        out.expiration = expirationOf(value)
        break
      case 'headers':
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          throw new TypeError('headers must be a plain object')
        }
        out ??= { persistent: true, mandatory: true }
        // A copy: a caller that reuses its headers object for the next send changes neither what
        // this one sends (it may wait for room) nor what its return is matched against.
        out.headers = { ...(value as Record<string, unknown>) }
        break
      case 'timestamp':
        out ??= { persistent: true, mandatory: true }
        out.timestamp = timestampOf(value)
        break
      case 'priority':
        checkInt('priority', value, 0, 255)
        out ??= { persistent: true, mandatory: true }
        out.priority = value as number
        break
      default:
        if (!shortStringProps.has(key)) throw unknownOption(key)
        checkShortString(key, value)
        out ??= { persistent: true, mandatory: true }
        out[key as ShortStringProp] = value as string
    }
  }
  if (out === undefined) return plainPublishOptions(persistent as boolean, mandatory as boolean)
  out.persistent = persistent as boolean
  out.mandatory = mandatory as boolean
  return out
}

function checkBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false, got ${inspect(value)}`)
}

/** AMQP carries the TTL as a string of digits: ms as a number, or that string itself. */
function expirationOf(value: unknown): string {
  if (typeof value === 'string' && /^\d{1,10}$/.test(value) && Number(value) <= 2 ** 32 - 1) {
    return String(Number(value))
  }
  if (typeof value === 'string') {
    throw new RangeError(
      `expiration must be ms as a number or a string of digits (0..${2 ** 32 - 1}), got ${inspect(value)}`,
    )
  }
  checkInt('expiration', value, 0, 2 ** 32 - 1)
  return String(value)
}

/** Seconds since the epoch (AMQP's unit), from a number of seconds or a valid Date. */
function timestampOf(value: unknown): number {
  if (value instanceof Date) {
    const ms = value.getTime()
    if (!(ms >= 0)) throw new RangeError('timestamp must be a valid Date from 1970 on')
    return Math.floor(ms / 1000)
  }
  checkInt('timestamp', value, 0, Number.MAX_SAFE_INTEGER)
  return value
}

const sendOptionNames = [
  'expiration',
  'headers',
  'messageId',
  'persistent',
  'mandatory',
  'callbacks',
  'contentType',
  'contentEncoding',
  'correlationId',
  'replyTo',
  'timestamp',
  'type',
  'userId',
  'appId',
  'priority',
] as const satisfies readonly (keyof SendOptions)[]

/** A send option nobody knows: named, with the known one it most looks like (a typo is silently ignored otherwise). */
function unknownOption(key: string): TypeError {
  let nearest: string = sendOptionNames[0]
  let best = Number.POSITIVE_INFINITY
  for (const name of sendOptionNames) {
    const a = key.toLowerCase()
    const b = name.toLowerCase()
    // A shared beginning counts double: 'expiry' means 'expiration' more than 'appId'.
    let prefix = 0
    while (prefix < a.length && a[prefix] === b[prefix]) prefix++
    const distance = editDistance(a, b) - 2 * prefix
    if (distance < best) {
      best = distance
      nearest = name
    }
  }
  return new TypeError(`unknown send option '${key}' (did you mean '${nearest}'?)`)
}

/** Levenshtein distance: insertions, deletions and substitutions, each 1. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution)
    }
    previous = current
  }
  return previous[b.length] as number
}

function checkCallbacks(cb: PublishCallbacks | undefined): void {
  if (cb === undefined) return
  if (cb.ackCallback !== undefined && typeof cb.ackCallback !== 'function')
    throw new TypeError('callbacks.ackCallback must be a function')
  if (cb.nackCallback !== undefined && typeof cb.nackCallback !== 'function')
    throw new TypeError('callbacks.nackCallback must be a function')
}

type ShortStringProp =
  | 'messageId'
  | 'contentType'
  | 'contentEncoding'
  | 'correlationId'
  | 'replyTo'
  | 'type'
  | 'userId'
  | 'appId'

/** @internal The send options that are AMQP short strings (properties carried as text). */
export const shortStringProps: ReadonlySet<string> = new Set<string>([
  'messageId',
  'contentType',
  'contentEncoding',
  'correlationId',
  'replyTo',
  'type',
  'userId',
  'appId',
] satisfies ShortStringProp[])
