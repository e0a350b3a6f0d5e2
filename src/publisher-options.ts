import { inspect } from 'node:util'
import type { Connection } from './connection.ts'
import type { Logger } from './internal/logger.ts'
import { checkInt } from './internal/validate.ts'

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
   * send rejects with `ConfirmTimeoutError`.
   * @default 30000
   */
  confirmTimeout?: number
  /**
   * The connection to open the channel on.
   * @default the process-wide shared publishing connection
   */
  connection?: Connection
  /**
   * What to do with messages left unconfirmed when the connection (or channel) drops: `true`
   * publishes them again once it is back (at-least-once: the broker may have had some, so they can
   * arrive twice); `false` rejects them with `ConnectionClosedError`.
   * @default true
   */
  republish?: boolean
  /**
   * Most sends waiting to be published (beyond the `maxInFlight` window), e.g. while the
   * connection recovers.
   * @default 10000
   */
  maxBuffered?: number
  /**
   * A send made while `maxBuffered` sends wait: `'reject'` fails it at once with code
   * `BUFFER_FULL`; `'wait'` queues it anyway, bounded by its `confirmTimeout` deadline.
   * @default 'reject'
   */
  whenBufferFull?: 'reject' | 'wait'
  /** Logger for this publisher. @default the connection's logger (silent unless given) */
  logger?: Logger
}

/** A publisher's settings, checked, with their defaults. */
export interface PublisherSettings {
  kind: 'sync' | 'async'
  maxInFlight: number
  confirmTimeout: number
  republish: boolean
  maxBuffered: number
  whenBufferFull: 'reject' | 'wait'
}

/** Checks a publisher's options (TypeError/RangeError naming the option) and applies the defaults. */
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
  checkInt('confirmTimeout', confirmTimeout, 1, 2 ** 31 - 1)
  const maxBuffered = options.maxBuffered ?? 10_000
  checkInt('maxBuffered', maxBuffered, 0, 10_000_000)
  const whenBufferFull = options.whenBufferFull ?? 'reject'
  if (whenBufferFull !== 'reject' && whenBufferFull !== 'wait') {
    throw new TypeError(`whenBufferFull must be 'reject' or 'wait', got ${inspect(whenBufferFull)}`)
  }
  return {
    kind,
    maxInFlight,
    confirmTimeout,
    republish: options.republish ?? true,
    maxBuffered,
    whenBufferFull,
  }
}
