import { type AmqpConfirmChannel, rawPublishTarget, writeRawPublish } from '../amqp.ts'
import { encodePublish, encodePublishPrefix, MAX_INLINE_BODY, type PublishPrefix } from './publish-frames.ts'

/**
 * Publishes plain messages (delivery mode only, small body) on one confirm channel from
 * pre-encoded frames, re-encoding the method and header frames only when the destination changes.
 */
export class RawPublish {
  readonly #channel: AmqpConfirmChannel
  readonly #target: { channel: number; maxBody: number } | undefined
  #prefix: PublishPrefix | undefined

  constructor(channel: AmqpConfirmChannel) {
    this.#channel = channel
    this.#target = rawPublishTarget(channel)
  }

  /**
   * Publishes and returns amqplib's backpressure answer, or undefined when this message (large
   * body) or this channel (closing, other amqplib internals) must go through amqplib's publish.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    persistent: boolean,
    mandatory: boolean,
  ): boolean | undefined {
    const target = this.#target
    if (!target || body.length > MAX_INLINE_BODY || body.length > target.maxBody) return undefined
    let prefix = this.#prefix
    if (
      prefix === undefined ||
      prefix.routingKey !== routingKey ||
      prefix.exchange !== exchange ||
      prefix.persistent !== persistent ||
      prefix.mandatory !== mandatory
    ) {
      prefix = encodePublishPrefix(target.channel, exchange, routingKey, persistent, mandatory)
      this.#prefix = prefix
    }
    return writeRawPublish(this.#channel, encodePublish(prefix, body))
  }
}
