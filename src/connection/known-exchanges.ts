// What one AMQP connection knows of exchanges: those found to exist (checked or declared through
// it), and those that refused a publish. Forgotten with the connection: after a recovery an
// exchange may be gone, or writable again.
import type { LapinError } from '../errors.js'
import type { TopologyPlan } from '../topology/topology.js'

/** Exchanges every vhost has, which clients can neither declare nor delete. */
export const predeclared: ReadonlySet<string> = new Set([
  'amq.direct',
  'amq.fanout',
  'amq.topic',
  'amq.headers',
  'amq.match',
])

/** True for the default exchange and the ones every vhost has. */
export function isBuiltIn(exchange: string): boolean {
  return exchange === '' || predeclared.has(exchange)
}

/** @internal The exchanges known on the current AMQP connection. */
export class KnownExchanges {
  #exist = new Set<string>()
  #refused = new Map<string, LapinError>()

  /** Known to exist: built in, or found by a check or a declaration. */
  has(exchange: string): boolean {
    return isBuiltIn(exchange) || this.#exist.has(exchange)
  }

  /** The error a publish to it got, when it takes none (internal, or no write permission). */
  refusal(exchange: string): LapinError | undefined {
    return this.#refused.get(exchange)
  }

  /** Found to exist. */
  learn(exchange: string): void {
    this.#exist.add(exchange)
  }

  /** The exchanges a plan declared exist. */
  learnPlan(plan: TopologyPlan): void {
    for (const step of plan.steps) if (step.exchange !== undefined) this.#exist.add(step.exchange)
  }

  /** Missing after all (deleted since its check). */
  forget(exchange: string): void {
    this.#exist.delete(exchange)
  }

  /** Exists but takes no publish: later checks fail with `error` without asking the broker. */
  refuse(exchange: string, error: LapinError): void {
    if (isBuiltIn(exchange)) return
    this.#exist.delete(exchange)
    this.#refused.set(exchange, error)
  }

  /** A new AMQP connection: nothing is known of it yet. */
  reset(): void {
    this.#exist.clear()
    this.#refused.clear()
  }
}
