// The fast path: frames lapinmq encodes itself, written where amqplib would write them. amqplib
// sends each frame through a per-channel PassThrough, a tick, a multiplexer immediate and a read
// before it reaches the socket; a publish or an ack written here skips those hops and their turn of
// latency. Everything here reads amqplib's private fields, so each part is probed first and stays
// off (amqplib's own methods are used) when those fields are not what this code was written for.
import type { Duplex, Writable } from 'node:stream'
import type { Channel, ChannelModel } from 'amqplib'
import type { FastPath } from '../config.js'
import {
  encodeAck,
  encodePublish,
  encodePublishPrefix,
  encodePublishWithHeaders,
  MAX_INLINE_BODY,
  type PublishPrefix,
  stringTableSize,
} from './frames.js'

/** The parts of amqplib's connection (`ChannelModel.connection`) the fast path touches. */
interface ConnectionInternals {
  frameMax?: unknown
  sentSinceLastCheck?: unknown
  stream?: Writable
  channels?: unknown
  muxer?: { _readIncoming?: unknown }
}

/** The parts of amqplib's channel the fast path touches. */
interface ChannelInternals {
  ch?: unknown
  pushConfirmCallback?: unknown
  connection?: ConnectionInternals
}

/** Every part off: `fastPath: false`, or amqplib's internals differ. */
export const fastPathOff: FastPath = Object.freeze({ corkedWrites: false, rawPublish: false, rawAck: false })

/**
 * Probes what of the fast path this amqplib connection allows and installs the corked writes. Called
 * once per AMQP connection, before any channel is opened on it.
 */
export function probeFastPath(model: ChannelModel, wanted: boolean): FastPath {
  if (!wanted) return fastPathOff
  const c = (model as unknown as { connection?: ConnectionInternals }).connection
  const stream = c?.stream
  const streamOk =
    typeof stream?.write === 'function' &&
    typeof stream.cork === 'function' &&
    typeof stream.uncork === 'function' &&
    typeof stream.writableNeedDrain === 'boolean'
  const readIncoming = c?.muxer?._readIncoming
  const corkedWrites = streamOk && typeof readIncoming === 'function'
  const direct = streamOk && Array.isArray(c?.channels) && typeof c?.sentSinceLastCheck === 'boolean'
  if (corkedWrites) coalesceWrites(stream as Writable, c?.muxer as { _readIncoming: () => void })
  return Object.freeze({
    corkedWrites,
    rawPublish: direct && typeof c?.frameMax === 'number',
    rawAck: direct,
  })
}

/**
 * amqplib's multiplexer writes each frame to the socket on its own: one system call per publish,
 * ack or confirm-mode frame. Corking the socket around one pass of the multiplexer hands the
 * frames of that pass to the kernel in one write. Frames and their order are unchanged.
 */
function coalesceWrites(stream: Writable, muxer: { _readIncoming: () => void }): void {
  const readIncoming = muxer._readIncoming
  muxer._readIncoming = () => {
    stream.cork()
    try {
      readIncoming.call(muxer)
    } finally {
      stream.uncork()
    }
  }
}

/**
 * Direct writes for one channel. The owner (the channel session) calls them only while the
 * channel and its connection still send, as lapinmq tracks from their events and its own closes.
 */
export class DirectWriter {
  readonly #c: ChannelInternals
  readonly #connection: ConnectionInternals
  readonly #channel: number
  /** Bodies up to this size go out from pre-encoded frames (0: publishes take amqplib's path). */
  readonly #maxInlineBody: number
  readonly #rawAck: boolean
  #prefix: PublishPrefix | undefined

  /** The writer for `channel`, or undefined when no part of the fast path applies to it. */
  static for(channel: Channel, fastPath: FastPath, confirm: boolean): DirectWriter | undefined {
    const c = channel as unknown as ChannelInternals
    const connection = c.connection
    if (typeof c.ch !== 'number' || !connection) return undefined
    const rawPublish =
      confirm &&
      fastPath.rawPublish &&
      typeof c.pushConfirmCallback === 'function' &&
      typeof connection.frameMax === 'number'
    if (!rawPublish && !fastPath.rawAck) return undefined
    const maxInlineBody = rawPublish ? Math.min(MAX_INLINE_BODY, (connection.frameMax as number) - 8) : -1
    return new DirectWriter(c, connection, c.ch, maxInlineBody, fastPath.rawAck)
  }

  private constructor(
    c: ChannelInternals,
    connection: ConnectionInternals,
    channel: number,
    maxInlineBody: number,
    rawAck: boolean,
  ) {
    this.#c = c
    this.#connection = connection
    this.#channel = channel
    this.#maxInlineBody = maxInlineBody
    this.#rawAck = rawAck
  }

  /**
   * Publishes a plain message (delivery mode and `mandatory` only, and `headers` if given) from
   * pre-encoded frames, with amqplib's bookkeeping (one confirm slot). Returns amqplib's
   * backpressure answer (false: wait for 'drain'), or undefined when this message must take
   * amqplib's publish (a large body, headers that are not a small table of strings).
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    persistent: boolean,
    mandatory: boolean,
    headers?: Record<string, unknown>,
  ): boolean | undefined {
    if (body.length > this.#maxInlineBody) return undefined
    const tableSize = headers === undefined ? 0 : stringTableSize(headers)
    if (tableSize === undefined) return undefined
    const buffer = this.#buffer()
    if (!buffer) return undefined
    let prefix = this.#prefix
    if (
      prefix === undefined ||
      prefix.routingKey !== routingKey ||
      prefix.exchange !== exchange ||
      prefix.persistent !== persistent ||
      prefix.mandatory !== mandatory
    ) {
      prefix = encodePublishPrefix(this.#channel, exchange, routingKey, persistent, mandatory)
      this.#prefix = prefix
    }
    const frames =
      headers === undefined
        ? encodePublish(prefix, body)
        : encodePublishWithHeaders(prefix, headers as Record<string, string>, tableSize, body)
    ;(this.#c.pushConfirmCallback as (cb: false) => void)(false)
    return this.#write(buffer, frames)
  }

  /** Sends a `basic.ack` from a hand-encoded frame; false when it must take amqplib's `ack`. */
  ack(deliveryTag: number, multiple: boolean): boolean {
    if (!this.#rawAck) return false
    const buffer = this.#buffer()
    if (!buffer) return false
    this.#write(buffer, encodeAck(this.#channel, deliveryTag, multiple))
    return true
  }

  /**
   * The channel's outgoing buffer in amqplib's multiplexer, or undefined when the frames must take
   * amqplib's way: the channel number was released (or reused by another channel), or amqplib is
   * closing the channel or connection on its own, before any event tells lapinmq (it marks that by
   * shadowing the send methods on the instance). The owner's own record of closes comes first;
   * this only narrows it.
   */
  #buffer(): Duplex | undefined {
    const entry = (this.#connection.channels as ({ channel?: unknown; buffer?: Duplex } | null)[])[
      this.#channel
    ]
    if (entry?.channel !== this.#c) return undefined
    if (Object.hasOwn(this.#c, 'sendMessage') || Object.hasOwn(this.#connection, 'sendMessage'))
      return undefined
    return entry.buffer
  }

  /**
   * Writes frames where amqplib would (traffic seen for heartbeats). When the channel's buffer is
   * empty, everything it held is already in the socket, so writing there directly keeps the
   * channel's frame order. A socket that needs draining means amqplib's multiplexer is waiting:
   * then the buffer is the way, and its backpressure counts.
   */
  #write(buffer: Duplex, frames: Buffer): boolean {
    const connection = this.#connection
    connection.sentSinceLastCheck = true
    const stream = connection.stream as Writable
    const idle = buffer.readableLength === 0 && buffer.writableLength === 0
    if (idle && stream.writable && !stream.writableNeedDrain) {
      writeThisTick(stream, frames)
      return true
    }
    return buffer.write(frames)
  }
}

const corkedThisTick = new WeakSet<Writable>()

/**
 * Writes to a socket corked until the end of this tick, so a burst of publishes leaves in one
 * system call. Uncorking at the end of the tick rather than at the turn's immediate keeps a sync
 * publish from waiting for the check phase.
 */
function writeThisTick(stream: Writable, chunk: Buffer): void {
  if (!corkedThisTick.has(stream)) {
    corkedThisTick.add(stream)
    stream.cork()
    process.nextTick(uncorkNow, stream)
  }
  stream.write(chunk)
}

function uncorkNow(stream: Writable): void {
  corkedThisTick.delete(stream)
  stream.uncork()
}
