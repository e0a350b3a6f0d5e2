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

/** Publish options of a plain message: only the delivery mode and `mandatory`. */
export interface PlainPublishOptions {
  readonly persistent: boolean
  readonly mandatory: boolean
}

/** The four plain option sets, shared (frozen) rather than allocated per send. */
const plainOptions: readonly (readonly PlainPublishOptions[])[] = [false, true].map((persistent) =>
  [false, true].map((mandatory) => Object.freeze({ persistent, mandatory })),
)
const plainSet = new Set<unknown>(plainOptions.flat())

/** The options if they are one of the shared plain sets (which can be published from pre-encoded frames). */
export function asPlain(options: AmqpOptions.Publish): PlainPublishOptions | undefined {
  return plainSet.has(options) ? (options as PlainPublishOptions) : undefined
}

/** True when the send sets nothing but `persistent`, `mandatory` and callbacks. */
function isPlain(options: SendOptions): boolean {
  return (
    options.expiration === undefined &&
    options.headers === undefined &&
    options.timestamp === undefined &&
    options.priority === undefined &&
    options.messageId === undefined &&
    options.contentType === undefined &&
    options.contentEncoding === undefined &&
    options.correlationId === undefined &&
    options.replyTo === undefined &&
    options.type === undefined &&
    options.userId === undefined &&
    options.appId === undefined
  )
}

/** Checks a send's options and turns them into amqplib's publish options. */
export function toPublishOptions(options: SendOptions | undefined): AmqpOptions.Publish {
  if (options === undefined) return plainOptions[1]?.[1] as AmqpOptions.Publish
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  checkCallbacks(options.callbacks)
  if (isPlain(options)) {
    const persistent = options.persistent ?? true
    const mandatory = options.mandatory ?? true
    return plainOptions[persistent ? 1 : 0]?.[mandatory ? 1 : 0] as AmqpOptions.Publish
  }
  const out: AmqpOptions.Publish = { persistent: true, mandatory: true }
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
  return out
}

function checkCallbacks(cb: PublishCallbacks | undefined): void {
  if (cb === undefined) return
  if (cb.ackCallback !== undefined && typeof cb.ackCallback !== 'function')
    throw new TypeError('callbacks.ackCallback must be a function')
  if (cb.nackCallback !== undefined && typeof cb.nackCallback !== 'function')
    throw new TypeError('callbacks.nackCallback must be a function')
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
