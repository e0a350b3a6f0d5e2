import type { AmqpOptions } from './amqp.ts'
import type { LapinError } from './errors.ts'
import { checkInt, checkShortString } from './internal/validate.ts'

/** Called exactly once per message, on the same outcome as the send's promise. */
export interface PublishCallbacks {
  /** The broker confirmed the message. */
  ackCallback?: () => void
  /** The message was returned, nacked, timed out, or its channel closed first. */
  nackCallback?: (error: LapinError) => void
}

/** Per-message options of `sendMessage` / `sendMessageToQueue`. */
export interface SendOptions {
  /** Per-message TTL in milliseconds (AMQP `expiration`). */
  expiration?: number
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
  contentType?: string
  contentEncoding?: string
  correlationId?: string
  replyTo?: string
  /** Seconds since the epoch, or a Date. */
  timestamp?: number | Date
  type?: string
  userId?: string
  appId?: string
  /** 0..255; only meaningful on queues with `x-max-priority`. */
  priority?: number
}

/** Checks a send's options and turns them into amqplib's publish options. */
export function toPublishOptions(options: SendOptions | undefined): AmqpOptions.Publish {
  const out: AmqpOptions.Publish = { persistent: true, mandatory: true }
  if (options === undefined) return out
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  const { expiration, headers, persistent, mandatory, timestamp, priority } = options
  if (expiration !== undefined) {
    checkInt('expiration', expiration, 0, 2 ** 32 - 1)
    out.expiration = String(expiration)
  }
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
      throw new TypeError('headers must be a plain object')
    }
    out.headers = headers
  }
  if (persistent !== undefined) out.persistent = persistent
  if (mandatory !== undefined) out.mandatory = mandatory
  if (timestamp !== undefined) {
    out.timestamp = timestamp instanceof Date ? Math.floor(timestamp.getTime() / 1000) : timestamp
  }
  if (priority !== undefined) {
    checkInt('priority', priority, 0, 255)
    out.priority = priority
  }
  for (const key of shortStringProps) {
    const value = options[key]
    if (value === undefined) continue
    checkShortString(key, value)
    out[key] = value
  }
  const cb = options.callbacks
  if (cb !== undefined) {
    for (const name of ['ackCallback', 'nackCallback'] as const) {
      if (cb[name] !== undefined && typeof cb[name] !== 'function')
        throw new TypeError(`callbacks.${name} must be a function`)
    }
  }
  return out
}

const shortStringProps = [
  'messageId',
  'contentType',
  'contentEncoding',
  'correlationId',
  'replyTo',
  'type',
  'userId',
  'appId',
] as const
