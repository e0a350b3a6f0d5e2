import type { Connection } from '../connection/connection.js'
import { LapinError, toLapinError } from '../errors.js'
import type { Logger } from '../util/logger.js'

/** What the owner of a channel that publishes does with the outcome of an exchange check. */
export interface ExchangeCheckHost {
  /** The exchange exists: publish what waited for it. */
  found(exchange: string): void
  /** The broker answered no (404, or a refusal): what waits for that exchange fails with `error`. */
  refused(exchange: string, error: LapinError): void
  /** True while the channel is open: a check that got no answer is tried again in a second. */
  retries(): boolean
  /** Publishes what waits, which checks the exchange again if it is still unknown. */
  retry(): void
  logger(): Logger
}

/**
 * Checks an exchange before the first publish to it on a connection: a publish to a missing exchange
 * then fails alone with `NOT_FOUND`, instead of the broker closing the channel and every message
 * (or call) in flight on it with it. One check per exchange at a time.
 */
export class ExchangeChecks {
  readonly #host: ExchangeCheckHost
  readonly #checking = new Set<string>()

  constructor(host: ExchangeCheckHost) {
    this.#host = host
  }

  check(connection: Connection, exchange: string): void {
    if (this.#checking.has(exchange)) return
    this.#checking.add(exchange)
    const host = this.#host
    connection.checkExchange(exchange).then(
      () => {
        this.#checking.delete(exchange)
        host.found(exchange)
      },
      (err: unknown) => {
        this.#checking.delete(exchange)
        const error =
          err instanceof LapinError ? err : toLapinError(err, `could not check exchange '${exchange}'`)
        if (error.replyCode !== undefined) {
          host.refused(exchange, error)
          return
        }
        // No answer (the connection went, or the check timed out): a reopened channel publishes
        // again; a channel still open retries in a while.
        host.logger().debug({ code: error.code }, 'lapinmq: exchange check failed; retrying')
        if (host.retries()) setTimeout(() => host.retry(), 1000).unref()
      },
    )
  }
}
