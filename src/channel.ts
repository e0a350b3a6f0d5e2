import type { AmqpChannel, AmqpConfirmChannel } from './amqp.ts'
import { type LapinError, toLapinError } from './errors.ts'

let nextIncarnation = 1

/**
 * One incarnation of an AMQP channel. A publisher or consumer holds one at a time; when it
 * closes, a new incarnation (with a new `id`) replaces it. Every delivery keeps the incarnation it
 * came from, and a settle is sent only while that incarnation is open: delivery tags are
 * meaningless on any other channel.
 */
export class ChannelSession<C extends AmqpChannel = AmqpChannel> {
  /** Unique in the process; grows with every channel opened. */
  readonly id = nextIncarnation++
  readonly channel: C
  #open = true
  #closeError: LapinError | undefined
  #onClose: ((error: LapinError | undefined) => void)[] = []

  constructor(channel: C) {
    this.channel = channel
    // amqplib emits 'error' before 'close' when the broker closes the channel with an error.
    channel.on('error', (err: unknown) => {
      this.#closeError = toLapinError(err, 'channel closed by the broker')
    })
    channel.on('close', () => {
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

  /** False once the channel has closed, for whatever reason. */
  get open(): boolean {
    return this.#open
  }

  /** The broker's reason, when the channel was closed by a channel error (404, 406, ...). */
  get closeError(): LapinError | undefined {
    return this.#closeError
  }

  /** Calls `cb` once when the channel closes (at once if it already has). */
  onClose(cb: (error: LapinError | undefined) => void): void {
    if (this.#open) this.#onClose.push(cb)
    else cb(this.#closeError)
  }

  /**
   * Closes the channel gracefully. The broker handles frames in order, so once this resolves every
   * ack sent before it has been processed.
   */
  async close(): Promise<void> {
    if (!this.#open) return
    try {
      await this.channel.close()
    } catch {
      // Already closing or the connection went away: nothing left to flush.
    }
  }
}

/** A channel session in confirm mode, as publishers use. */
export type ConfirmSession = ChannelSession<AmqpConfirmChannel>
