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

/**
 * Checks a send's options and turns them into amqplib's publish options. It walks the keys the
 * caller set (usually two or three) rather than probing every known option: a probe for an absent
 * property of the caller's object, whose shape varies from call site to call site, is a slow
 * lookup, and twelve of them cost more than the rest of a publish (profiled: 7-8 % of the busy
 * time of a pipeline).
 */
export function toPublishOptions(options: SendOptions | undefined): AmqpOptions.Publish {
  if (options === undefined) return plainOptions[1]?.[1] as AmqpOptions.Publish
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  let persistent: unknown = true
  let mandatory: unknown = true
  let out: AmqpOptions.Publish | undefined
  for (const key in options) {
    const value = options[key as keyof SendOptions]
    if (value === undefined) continue
    switch (key) {
      case 'persistent':
        persistent = value
        break
      case 'mandatory':
        mandatory = value
        break
      case 'callbacks':
        checkCallbacks(value as PublishCallbacks)
        break
      case 'expiration':
        checkInt('expiration', value, 0, 2 ** 32 - 1)
        out ??= {}
        out.expiration = String(value)
        break
      case 'headers':
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          throw new TypeError('headers must be a plain object')
        }
        out ??= {}
        out.headers = value
        break
      case 'timestamp':
        out ??= {}
        out.timestamp = value instanceof Date ? Math.floor(value.getTime() / 1000) : (value as number)
        break
      case 'priority':
        checkInt('priority', value, 0, 255)
        out ??= {}
        out.priority = value as number
        break
      default:
        if (shortStringProps.has(key)) {
          checkShortString(key, value)
          out ??= {}
          out[key as ShortStringProp] = value as string
        }
    }
  }
  if (out === undefined) return plainOptions[persistent ? 1 : 0]?.[mandatory ? 1 : 0] as AmqpOptions.Publish
  out.persistent = persistent as boolean
  out.mandatory = mandatory as boolean
  return out
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

const shortStringProps = new Set<string>([
  'messageId',
  'contentType',
  'contentEncoding',
  'correlationId',
  'replyTo',
  'type',
  'userId',
  'appId',
] satisfies ShortStringProp[])
