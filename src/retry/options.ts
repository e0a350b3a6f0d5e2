// The `retry` option of a Consumer: checked, with the names of the queues the ladder uses.
import { planTopology, type QueueDeclaration, type TopologyPlan } from '../topology/topology.js'
import { checkInt, checkShortString } from '../util/validate.js'

/**
 * A retry ladder: a failed message waits in a delay queue, then comes back; after the last delay
 * it goes to a dead-letter queue, with headers saying why.
 */
export interface RetryOptions {
  /**
   * The wait before each retry, in ms: `[1_000, 10_000, 60_000]` retries a failed message after
   * 1 s, then 10 s, then 1 min, and dead-letters it on its fourth failure. Each distinct delay is a
   * durable queue `<queue>.retry.<ms>` (TTL `ms`, dead-lettered back to the work queue).
   */
  delays: readonly number[]
  /**
   * Where a message goes after its last retry, or at once on `FAIL_DO_NOT_RETRY`: a queue,
   * declared durable. `false` rejects it without requeue instead (dead-lettered by the work
   * queue's own dead-letter exchange, if it has one; dropped otherwise).
   * @default `<queue>.dead`
   */
  deadLetterQueue?: string | false
}

/** @internal The retry option, checked: delays, queue names, and what to declare. */
export interface ResolvedRetry {
  /** The work queue. */
  readonly queue: string
  readonly delays: readonly number[]
  /** The delay queue of each step (`delayQueues[i]` waits `delays[i]` ms). */
  readonly delayQueues: readonly string[]
  /** The dead-letter queue, or false: reject without requeue. */
  readonly deadLetterQueue: string | false
  /** The delay queues and the dead-letter queue, declared on the consumer's channel. */
  readonly topology: TopologyPlan
}

/** The longest delay: a TTL the broker takes and a timer Node can run (about 24.8 days). */
const maxDelay = 2 ** 31 - 1

/**
 * @internal Checks `retry` for the work queue `queue` (TypeError/RangeError naming the field) and
 * names its queues. `quorum`: the work queue is a quorum queue, and so are the ladder's queues
 * (replicated like it).
 */
export function resolveRetry(retry: RetryOptions, queue: string, quorum: boolean): ResolvedRetry {
  if (typeof retry !== 'object' || retry === null || Array.isArray(retry)) {
    throw new TypeError('retry must be an object: { delays: number[], deadLetterQueue?: string | false }')
  }
  for (const key of Object.keys(retry)) {
    if (key !== 'delays' && key !== 'deadLetterQueue') {
      throw new TypeError(`retry has an unknown field '${key}' (delays, deadLetterQueue)`)
    }
  }
  if (queue === '') {
    throw new TypeError("retry needs a named queue: a temporary queue ('') cannot be dead-lettered back to")
  }
  const { delays } = retry
  if (!Array.isArray(delays) || delays.length === 0) {
    throw new TypeError(
      'retry.delays must be a non-empty array of delays in ms, e.g. [1_000, 10_000, 60_000]',
    )
  }
  if (delays.length > 100) throw new RangeError(`retry.delays holds at most 100 delays, got ${delays.length}`)
  for (const [i, ms] of delays.entries()) checkInt(`retry.delays[${i}]`, ms, 1, maxDelay)
  const delayQueues = delays.map((ms) => `${queue}.retry.${ms}`)
  for (const name of delayQueues) {
    if (Buffer.byteLength(name) > 255) {
      throw new RangeError(
        `the delay queue '${name.slice(0, 40)}…' would be longer than 255 bytes: shorten queueName`,
      )
    }
  }
  const given = retry.deadLetterQueue
  const deadLetterQueue = given === undefined ? `${queue}.dead` : given
  if (deadLetterQueue !== false) {
    checkShortString('retry.deadLetterQueue', deadLetterQueue)
    if (deadLetterQueue === '' || deadLetterQueue.startsWith('amq.')) {
      throw new RangeError("retry.deadLetterQueue must be a queue name (not '' nor amq.*), or false")
    }
    if (deadLetterQueue === queue || delayQueues.includes(deadLetterQueue)) {
      throw new RangeError(
        `retry.deadLetterQueue '${deadLetterQueue}' must differ from the work queue and the delay queues`,
      )
    }
  }
  const type = quorum ? ({ type: 'quorum' } as const) : {}
  const queues: QueueDeclaration[] = [...new Set(delays)].map((ms) => ({
    name: `${queue}.retry.${ms}`,
    ...type,
    messageTtl: ms,
    deadLetterExchange: '',
    deadLetterRoutingKey: queue,
  }))
  if (deadLetterQueue !== false) queues.push({ name: deadLetterQueue, ...type })
  return {
    queue,
    delays: [...delays],
    delayQueues,
    deadLetterQueue,
    topology: planTopology({ queues }, 'retry'),
  }
}
