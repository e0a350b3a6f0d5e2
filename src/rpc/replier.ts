import type { Connection } from '../connection/connection.js'
import { LapinError } from '../errors.js'
import type { MessageProperties } from '../properties.js'
import type { SendOptions } from '../publisher/options.js'
import { jsonOptions, Publisher } from '../publisher/publisher.js'
import { encodeJson } from '../util/json.js'
import type { Logger } from '../util/logger.js'
import { toBody } from '../util/validate.js'

/** The properties a reply can carry; the replier sets `correlationId` and sends it to `replyTo`. */
export type ReplyOptions = Omit<SendOptions, 'callbacks' | 'correlationId' | 'replyTo' | 'mandatory'>

/**
 * @internal A consumer's replies: published with confirms on a channel of the consumer's
 * connection, opened at the first reply and closed when the consumer stops.
 */
export class Replier {
  readonly #connection: () => Connection | undefined
  readonly #logger: () => Logger
  readonly #window: number
  #publisher: Publisher | undefined

  /** @param window most replies unconfirmed at once (the consumer's prefetch) */
  constructor(connection: () => Connection | undefined, logger: () => Logger, window: number) {
    this.#connection = connection
    this.#logger = logger
    this.#window = window
  }

  /**
   * Sends `body` to the request's `replyTo` with its `correlationId`. Throws `NO_REPLY_TO` when the
   * request has none, and `TypeError` for a bad body or option, before anything is sent.
   */
  reply(request: RequestIdentity, body: unknown, options?: ReplyOptions): Promise<void> {
    const replyTo = replyToOf(request)
    return this.#send(replyTo, request.properties.correlationId, toBody(body), options)
  }

  /** {@link reply} with `value` as JSON (`contentType: 'application/json'` unless the options name another). */
  replyJson(request: RequestIdentity, value: unknown, options?: ReplyOptions): Promise<void> {
    const replyTo = replyToOf(request)
    const body = encodeJson(value)
    return this.#send(replyTo, request.properties.correlationId, body, jsonOptions(options) as ReplyOptions)
  }

  /** Waits (up to `timeout` ms) for replies still unconfirmed, then closes the channel. */
  async stop(timeout: number): Promise<void> {
    await this.#publisher?.stop({ timeout })
  }

  #send(
    replyTo: string,
    correlationId: string | undefined,
    body: Buffer,
    options?: ReplyOptions,
  ): Promise<void> {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new TypeError('options must be an object')
    }
    for (const key of ['callbacks', 'correlationId', 'replyTo', 'mandatory'] as const) {
      if ((options as Record<string, unknown> | undefined)?.[key] !== undefined) {
        throw new TypeError(`${key} cannot be set on a reply: it answers the request's`)
      }
    }
    const send: SendOptions = {
      ...options,
      persistent: options?.persistent ?? false,
      // A reply to a caller's own queue that is gone has nowhere to go, and a direct reply-to name
      // is never "routed" for the broker (a mandatory reply comes back even when delivered).
      mandatory: false,
    }
    if (correlationId !== undefined) send.correlationId = correlationId
    return this.#publisher_().sendMessage('', replyTo, body, send)
  }

  #publisher_(): Publisher {
    if (this.#publisher) return this.#publisher
    const connection = this.#connection()
    // A reply that cannot be confirmed is not sent again: the consumer's request, on the same
    // connection, is redelivered and answered again instead.
    this.#publisher = new Publisher({
      kind: 'async',
      maxInFlight: this.#window,
      republish: false,
      logger: this.#logger(),
      ...(connection && { connection }),
    })
    return this.#publisher
  }
}

/** What a reply needs of its request. */
export interface RequestIdentity {
  readonly deliveryTag: number
  readonly properties: MessageProperties
}

function replyToOf(request: RequestIdentity): string {
  const { replyTo } = request.properties
  if (typeof replyTo === 'string' && replyTo !== '') return replyTo
  throw new LapinError(
    'NO_REPLY_TO',
    `the message (delivery tag ${request.deliveryTag}) has no replyTo property: there is nowhere to send a reply`,
  )
}
