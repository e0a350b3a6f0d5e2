import type { Message as AmqplibMessage, Channel, Options } from 'amqplib'
import { LapinError, toLapinError } from '../errors.js'
import type { MessageProperties } from '../properties.js'
import { throwLater } from '../util/safe-emit.js'
import type { DirectWriter } from './fast-path.js'

/** Options of one publish, as the publisher resolved them. */
export interface PublishOptions {
  persistent: boolean
  mandatory: boolean
  expiration?: string
  headers?: Record<string, unknown>
  messageId?: string
  contentType?: string
  contentEncoding?: string
  correlationId?: string
  replyTo?: string
  timestamp?: number
  type?: string
  userId?: string
  appId?: string
  priority?: number
}

/** The four option sets of a plain publish, shared (frozen) rather than allocated per send. */
const plainOptions: readonly (readonly PublishOptions[])[] = [false, true].map((persistent) =>
  [false, true].map((mandatory) => Object.freeze({ persistent, mandatory })),
)
const plainSet = new Set<unknown>(plainOptions.flat())

/**
 * The shared options of a plain publish (only persistence and `mandatory`): a channel session
 * sends those from pre-encoded frames when the fast path is on.
 */
export function plainPublishOptions(persistent: boolean, mandatory: boolean): PublishOptions {
  return (plainOptions[persistent ? 1 : 0] as PublishOptions[])[mandatory ? 1 : 0] as PublishOptions
}

/** True for the shared options of a plain publish. */
export function isPlain(options: PublishOptions): boolean {
  return plainSet.has(options)
}

/**
 * True for the options of a publish that is plain but for its headers: the fast path sends it from
 * its own frames when the headers are a small table of strings (a trace context, say).
 */
export function isPlainWithHeaders(options: PublishOptions): boolean {
  if (options.headers === undefined) return false
  for (const key in options) {
    if (key === 'persistent' || key === 'mandatory' || key === 'headers') continue
    if (options[key as keyof PublishOptions] !== undefined) return false
  }
  return true
}

/** One message delivered to a consumer. */
export interface Delivery {
  readonly deliveryTag: number
  readonly redelivered: boolean
  readonly exchange: string
  readonly routingKey: string
  readonly properties: MessageProperties
  readonly body: Buffer
}

/** What `exchange.declare` sets besides the name and type. */
export interface ExchangeOptions {
  durable: boolean
  autoDelete: boolean
  internal: boolean
  arguments?: Record<string, unknown>
}

/** What `basic.consume` sets besides the queue. */
export interface ConsumeOptions {
  /**
   * The broker counts a message as settled once sent: no ack is expected (direct reply-to
   * requires it). Otherwise acks are manual.
   */
  noAck?: boolean
  /** The consumer tag; the broker makes one up when it is absent. */
  consumerTag?: string
  /** No other consumer may consume the queue meanwhile (403 `ACCESS_REFUSED` otherwise). */
  exclusive?: boolean
  /** Consumer arguments, e.g. `x-priority`, `x-stream-offset`. */
  arguments?: Record<string, unknown>
}

/** A mandatory message the broker returned (`basic.return`): nothing was bound for it. */
export interface ReturnedMessage {
  readonly exchange: string
  readonly routingKey: string
  readonly replyCode: number
  readonly replyText: string
  readonly properties: MessageProperties
  readonly body: Buffer
}

/** What a channel that publishes mandatory messages hears besides deliveries. */
export interface ReturnListener {
  /** `basic.return` (on a confirm channel, always before the confirm of the same message). */
  onReturn(message: ReturnedMessage): void
  /** The socket takes more after a publish answered false. */
  onDrain(): void
}

/** What a publisher hears from its confirm channel. */
export interface ConfirmListener extends ReturnListener {
  /** `basic.ack` (`nack: false`) or `basic.nack` for `tag`, and every tag below it when `multiple`. */
  onConfirm(tag: number, multiple: boolean, nack: boolean): void
}

/** The connection a channel lives on, as far as the channel needs to know it. */
export interface ChannelHost {
  /** False once the connection began to close or failed. */
  readonly sending: boolean
}

/** Thrown by `publish` when the channel no longer sends: the send can go out on the next channel. */
export class ChannelClosingError extends LapinError {
  constructor(cause?: unknown) {
    super('CHANNEL_CLOSED', 'the channel is closing', { cause })
  }
}

let nextIncarnation = 1
let frameTurn = false
const endFrameTurn = (): void => {
  frameTurn = false
}

/**
 * Marks the rest of this pass of the event loop's poll phase (up to its check phase) as a turn
 * in which broker frames were handled.
 */
function markFrameTurn(): void {
  if (frameTurn) return
  frameTurn = true
  setImmediate(endFrameTurn)
}

/**
 * True while the event loop is handling the broker's frames (a delivery, a confirm, a return) or
 * the microtasks that follow them; false in timers and other I/O. Acks decided in a frame turn
 * leave at its end; others wait for the turn's immediate, where the acks of every task that
 * finished in the same timers phase leave together.
 */
export function inFrameTurn(): boolean {
  return frameTurn
}

/**
 * One incarnation of an AMQP channel, and the only handle on it: lapinmq's own verbs over the
 * amqplib channel it owns. A publisher or consumer holds one at a time; when it closes, a new
 * incarnation (with a new `id`) replaces it. Deliveries keep the incarnation they came from, and a
 * settle is sent only while that incarnation still sends: delivery tags mean nothing on any other
 * channel.
 *
 * "Still sends" is lapinmq's own record, from amqplib's public events (a broker close, an error,
 * the connection's close) and from the closes lapinmq starts itself. No frame is written, on the
 * fast path or through amqplib, once it is false. amqplib closes a channel on its own only when
 * the broker breaks the protocol or a listener throws; the listeners here never throw.
 */
export class ChannelSession {
  /** Unique in the process; grows with every channel opened. */
  readonly id = nextIncarnation++
  readonly #channel: Channel
  readonly #host: ChannelHost
  readonly #writer: DirectWriter | undefined
  /** amqplib's own methods, when an instrumentation wrapped them (see {@link unwrappedMethods}). */
  readonly #unwrapped: UnwrappedMethods | undefined
  #sending = true
  #open = true
  #closeError: LapinError | undefined
  #onClose: ((error: LapinError | undefined) => void)[] = []

  /** @param writer the fast path for this channel, if any part of it applies */
  constructor(channel: Channel, host: ChannelHost, writer: DirectWriter | undefined) {
    this.#channel = channel
    this.#host = host
    this.#writer = writer
    this.#unwrapped = unwrappedMethods(channel)
    // amqplib emits 'error' before 'close' when the broker closes the channel with an error.
    channel.on('error', (err: unknown) => {
      this.#sending = false
      this.#closeError = toLapinError(err, 'channel closed by the broker')
    })
    channel.on('close', () => {
      this.#sending = false
      this.#open = false
      // amqplib closes a dead connection's channels before it reports the connection closed: let
      // that report land first, so a reopen from these callbacks sees the connection as it is.
      setImmediate(() => {
        const callbacks = this.#onClose
        this.#onClose = []
        for (const cb of callbacks) cb(this.#closeError)
      })
    })
  }

  /** False once the channel or its connection began to close: nothing more is sent on it. */
  get open(): boolean {
    return this.#sending && this.#host.sending
  }

  /** The broker's reason, when the channel was closed by a channel error (404, 406, ...). */
  get closeError(): LapinError | undefined {
    return this.#closeError
  }

  /** Calls `cb` once when the channel has closed (at once if it already has). */
  onClose(cb: (error: LapinError | undefined) => void): void {
    if (this.#open) this.#onClose.push(cb)
    else cb(this.#closeError)
  }

  /**
   * Publishes on a confirm channel: plain messages (string headers allowed) from pre-encoded
   * frames when the fast path allows it, the rest through amqplib. Returns false when the socket wants draining (wait for
   * the listener's `onDrain`). Throws {@link ChannelClosingError} when the channel no longer sends
   * (nothing was sent), or `INVALID_MESSAGE` when the message cannot be encoded (nothing was sent,
   * no confirm slot used).
   */
  publish(exchange: string, routingKey: string, body: Buffer, options: PublishOptions): boolean {
    if (!this.open) throw new ChannelClosingError()
    const writer = this.#writer
    if (writer !== undefined) {
      const { persistent, mandatory } = options
      const ok = plainSet.has(options)
        ? writer.publish(exchange, routingKey, body, persistent, mandatory)
        : isPlainWithHeaders(options)
          ? writer.publish(exchange, routingKey, body, persistent, mandatory, options.headers)
          : undefined
      if (ok !== undefined) return ok
    }
    try {
      const unwrapped = this.#unwrapped
      if (unwrapped !== undefined) return unwrapped.publish(exchange, routingKey, body, options)
      return this.#channel.publish(exchange, routingKey, body, options as Options.Publish)
    } catch (err) {
      if ((err as Error)?.name === 'IllegalOperationError') throw new ChannelClosingError(err)
      // amqplib encodes before it writes: an encoding failure sent nothing and used no tag. The
      // text is ours: amqplib's may quote the header value.
      const message = `message could not be encoded (${(err as Error)?.name}): header values must be strings, numbers, booleans, Buffers, Dates, arrays or plain objects, and the table under 64 KiB`
      throw new LapinError('INVALID_MESSAGE', message, { cause: err })
    }
  }

  /** Sends `basic.ack`; false when the channel no longer sends (the broker requeues the message). */
  ack(deliveryTag: number, multiple: boolean): boolean {
    if (!this.open) return false
    if (this.#writer?.ack(deliveryTag, multiple)) return true
    try {
      if (this.#unwrapped !== undefined) this.#unwrapped.ack(tagged(deliveryTag), multiple)
      else this.#channel.ack(tagged(deliveryTag), multiple)
      return true
    } catch {
      return false
    }
  }

  /** Sends `basic.nack`; false when the channel no longer sends (the broker requeues the message). */
  nack(deliveryTag: number, multiple: boolean, requeue: boolean): boolean {
    if (!this.open) return false
    try {
      if (this.#unwrapped !== undefined) this.#unwrapped.nack(tagged(deliveryTag), multiple, requeue)
      else this.#channel.nack(tagged(deliveryTag), multiple, requeue)
      return true
    } catch {
      return false
    }
  }

  /** Hears confirms, returns and drains (a confirm channel; once per session). */
  listenForConfirms(listener: ConfirmListener): void {
    const ch = this.#channel
    const confirmed =
      (nack: boolean) =>
      (f: { deliveryTag: number; multiple: boolean }): void => {
        markFrameTurn()
        try {
          listener.onConfirm(f.deliveryTag, f.multiple, nack)
        } catch (err) {
          throwLater(err)
        }
      }
    ch.on('ack', confirmed(false))
    ch.on('nack', confirmed(true))
    this.listenForReturns(listener)
  }

  /** Hears returns and drains (once per session; {@link listenForConfirms} includes it). */
  listenForReturns(listener: ReturnListener): void {
    const ch = this.#channel
    ch.on('return', (m: AmqplibMessage) => {
      markFrameTurn()
      const f = m.fields as unknown as {
        exchange: string
        routingKey: string
        replyCode: number
        replyText: string
      }
      try {
        listener.onReturn({
          exchange: f.exchange,
          routingKey: f.routingKey,
          replyCode: f.replyCode,
          replyText: f.replyText,
          properties: m.properties as unknown as MessageProperties,
          body: m.content,
        })
      } catch (err) {
        throwLater(err)
      }
    })
    ch.on('drain', () => {
      try {
        listener.onDrain()
      } catch (err) {
        throwLater(err)
      }
    })
  }

  /** Sets the prefetch of this channel's consumers. */
  async prefetch(count: number): Promise<void> {
    await this.#rpc(() => this.#channel.prefetch(count), 'could not set the prefetch')
  }

  /** Declares a queue; resolves to its name (the server's, for `''`). */
  async assertQueue(name: string, options: Options.AssertQueue): Promise<string> {
    const reply = await this.#rpc(
      () => this.#channel.assertQueue(name, options),
      `could not declare queue '${name}'`,
    )
    return reply.queue
  }

  /** Checks that a queue exists without declaring it (the broker answers 404 `NOT_FOUND` when it does not). */
  async checkQueue(name: string): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    const reply = await this.#rpc(() => this.#channel.checkQueue(name), `queue '${name}' is not available`)
    return { queue: reply.queue, messageCount: reply.messageCount, consumerCount: reply.consumerCount }
  }

  /** Checks that an exchange exists without declaring it (404 `NOT_FOUND`, which closes the channel, when it does not). */
  async checkExchange(name: string): Promise<void> {
    await this.#rpc(() => this.#channel.checkExchange(name), `exchange '${name}' is not available`)
  }

  /** Binds a queue to an exchange; `args` are the binding's arguments (a headers exchange matches on them). */
  async bindQueue(
    queue: string,
    exchange: string,
    routingKey: string,
    args?: Record<string, unknown>,
  ): Promise<void> {
    await this.#rpc(
      () => this.#channel.bindQueue(queue, exchange, routingKey, args),
      `could not bind queue '${queue}' to exchange '${exchange}'`,
    )
  }

  /** Declares an exchange (a redeclare with other properties or arguments: 406 `PRECONDITION_FAILED`). */
  async assertExchange(name: string, type: string, options: ExchangeOptions): Promise<void> {
    await this.#rpc(
      () => this.#channel.assertExchange(name, type, options),
      `could not declare exchange '${name}'`,
    )
  }

  /** Binds exchange `destination` to exchange `source`: what `source` routes with `routingKey` goes on to `destination`. */
  async bindExchange(
    destination: string,
    source: string,
    routingKey: string,
    args?: Record<string, unknown>,
  ): Promise<void> {
    await this.#rpc(
      () => this.#channel.bindExchange(destination, source, routingKey, args),
      `could not bind exchange '${destination}' to exchange '${source}'`,
    )
  }

  /** Deletes a queue (and its messages); deleting a missing queue succeeds. */
  async deleteQueue(name: string): Promise<void> {
    await this.#rpc(() => this.#channel.deleteQueue(name), `could not delete queue '${name}'`)
  }

  /** Deletes an exchange and its bindings; deleting a missing exchange succeeds. */
  async deleteExchange(name: string): Promise<void> {
    await this.#rpc(() => this.#channel.deleteExchange(name), `could not delete exchange '${name}'`)
  }

  /** Removes the ready messages of a queue; returns how many (404 `NOT_FOUND` when it is missing). */
  async purgeQueue(name: string): Promise<number> {
    const reply = await this.#rpc(() => this.#channel.purgeQueue(name), `could not purge queue '${name}'`)
    return reply.messageCount
  }

  /**
   * Consumes a queue, with manual acks unless `noAck`. `onDelivery` gets each message, and `null`
   * when the broker cancels the consumer (queue deleted, a quorum queue's leader moved). Resolves to
   * the consumer tag.
   */
  async consume(
    queue: string,
    onDelivery: (delivery: Delivery | null) => void,
    options: ConsumeOptions = {},
  ): Promise<string> {
    // A turn of frames matters to acks only: a no-ack consumer's deliveries do not mark one.
    const acked = options.noAck !== true
    const consume = this.#unwrapped?.consume ?? this.#channel.consume.bind(this.#channel)
    const reply = await this.#rpc(
      () =>
        consume(
          queue,
          (m) => {
            if (acked) markFrameTurn()
            try {
              onDelivery(m === null ? null : toDelivery(m))
            } catch (err) {
              throwLater(err)
            }
          },
          { ...options, noAck: !acked },
        ),
      `could not consume queue '${queue}'`,
    )
    return reply.consumerTag
  }

  /** Cancels a consumer; the broker sends no more deliveries to it. */
  async cancel(consumerTag: string): Promise<void> {
    await this.#rpc(() => this.#channel.cancel(consumerTag), 'could not cancel the consumer')
  }

  /**
   * Closes the channel gracefully; nothing is sent on it afterwards. The broker handles frames in
   * order, so once this resolves every ack sent before it has been processed.
   */
  async close(): Promise<void> {
    if (!this.#open) return
    const wasSending = this.open
    this.#sending = false
    if (!wasSending) return
    try {
      await this.#channel.close()
    } catch {
      // Already closing or the connection went away: nothing left to flush.
    }
  }

  /** Runs one amqplib RPC; a failure is the broker's reason for closing the channel when it gave one. */
  async #rpc<T>(call: () => Promise<T>, what: string): Promise<T> {
    if (!this.open) throw new ChannelClosingError()
    try {
      return await call()
    } catch (err) {
      throw this.#closeError ?? toLapinError(err, what)
    }
  }
}

/** A channel's publish, ack, nack and consume as amqplib wrote them. */
interface UnwrappedMethods {
  publish(exchange: string, routingKey: string, body: Buffer, options: PublishOptions): boolean
  ack(message: AmqplibMessage, multiple: boolean): void
  nack(message: AmqplibMessage, multiple: boolean, requeue: boolean): void
  consume: Channel['consume']
}

type AnyMethod = (this: unknown, ...args: unknown[]) => unknown

/** The function a shimmer-style wrapper (OpenTelemetry instrumentations) replaced, if `fn` is one. */
function originalOf(fn: unknown): AnyMethod | undefined {
  const wrapper = fn as { __wrapped?: unknown; __original?: unknown } | undefined
  return typeof fn === 'function' && wrapper?.__wrapped === true && typeof wrapper.__original === 'function'
    ? (wrapper.__original as AnyMethod)
    : undefined
}

/**
 * amqplib's own publish, ack, nack and consume for `channel`, when an instrumentation wrapped them
 * (OpenTelemetry's instrumentation-amqplib): undefined when none did. lapinmq traces its sends and
 * deliveries itself; the wrapped methods would add a second span for each, overwrite the context a
 * send carries, and open a span per delivery that acks on the fast path never end.
 */
function unwrappedMethods(channel: Channel): UnwrappedMethods | undefined {
  // The class that defines them (amqplib's channel_model Channel): a confirm channel's parent class.
  let proto: Record<string, unknown> | null = Object.getPrototypeOf(channel)
  while (proto !== null && !Object.hasOwn(proto, 'consume')) proto = Object.getPrototypeOf(proto)
  if (proto === null) return undefined
  const own = proto
  const publish = originalOf(own.publish)
  const ack = originalOf(own.ack)
  const nack = originalOf(own.nack)
  const consume = originalOf(own.consume)
  const wrappedConfirm = originalOf((channel as unknown as Record<string, unknown>).publish)
  if (!publish && !ack && !nack && !consume && !wrappedConfirm) return undefined
  const basePublish = publish ?? (own.publish as AnyMethod)
  // A confirm channel's publish is the base one and a confirm callback slot (none: lapinmq hears
  // confirms as events), as amqplib's ConfirmChannel does it.
  const c = channel as unknown as { pushConfirmCallback?: (cb: undefined) => void }
  const confirm = Object.getPrototypeOf(channel) !== own && typeof c.pushConfirmCallback === 'function'
  return {
    publish: (exchange, routingKey, body, options) => {
      const ok = basePublish.call(channel, exchange, routingKey, body, options) as boolean
      if (confirm) c.pushConfirmCallback?.(undefined)
      return ok
    },
    ack: (message, multiple) => void (ack ?? (own.ack as AnyMethod)).call(channel, message, multiple),
    nack: (message, multiple, requeue) =>
      void (nack ?? (own.nack as AnyMethod)).call(channel, message, multiple, requeue),
    consume: ((...args: unknown[]) =>
      (consume ?? (own.consume as AnyMethod)).call(channel, ...args)) as Channel['consume'],
  }
}

/** The one field of a delivery amqplib's ack and nack read. */
function tagged(deliveryTag: number): AmqplibMessage {
  return { fields: { deliveryTag } } as AmqplibMessage
}

function toDelivery(m: AmqplibMessage): Delivery {
  const f = m.fields
  return {
    deliveryTag: f.deliveryTag,
    redelivered: f.redelivered,
    exchange: f.exchange,
    routingKey: f.routingKey,
    properties: m.properties as unknown as MessageProperties,
    body: m.content,
  }
}
