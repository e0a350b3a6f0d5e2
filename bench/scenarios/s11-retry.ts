// S11: the retry ladder. The same lapinmq consumer as S5 (concurrency = prefetch, no-op task), with
// `retry: { delays }` ('lapinmq') and without ('lapinmq, no retry'), interleaved round by round:
// - happy path: a prefilled queue, no message fails; what merely configuring the ladder costs;
// - 10 % failing once: the first delivery of every 10th message returns FAIL_RETRY_LATER, its next
//   one SUCCESS. Prefilled, it measures throughput; at a fixed rate below capacity (the queue kept
//   empty), the time from a failure to the redelivery is the ladder's own (delay + copy + confirm +
//   dead-lettering), not the wait behind a backlog: a retried message goes back at the queue's tail.
// The rate is messages done (SUCCESS) per second, from the first delivery to the last success.
// Counted per run: failures, deliveries back from the ladder (`message.attempt` ≥ 2), and the
// broker's own dead-letter count in their `x-death` headers; failure → redelivery goes into the
// "consumer latency" histogram. The runner counts (then deletes) the ladder's queues after the run.
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { deferred, type PeerRun, type RunContext, type Scenario } from '../lib/common.ts'
import { Consumer, type Message, MessageStatus } from '../lib/lapinmq.ts'
import { lapinConnection } from '../lib/peers.ts'
import { publishers, stampOf } from '../lib/publish.ts'

/** The peer names: the consumer with the ladder is 'lapinmq', so ratios read "with ÷ without". */
export const withRetry = 'lapinmq'
export const withoutRetry = 'lapinmq, no retry'

/** The broker's dead-letter count for `queue`'s delay queues in a message's `x-death` header. */
function deadLettersOf(headers: Record<string, unknown>, queue: string): number {
  const deaths = headers['x-death']
  if (!Array.isArray(deaths)) return 0
  let n = 0
  for (const death of deaths as { queue?: unknown; count?: unknown }[]) {
    if (typeof death.queue === 'string' && death.queue.startsWith(`${queue}.retry.`)) n += Number(death.count)
  }
  return n
}

/**
 * The task of both peers, one instance per run: the same code with and without the ladder. `done`
 * is called on each success. A class: its per-message method is not an arrow function per message.
 */
class Task {
  readonly #ctx: RunContext
  readonly #done: () => void
  readonly #failEvery: number
  /** performance.now() at each failure, by message (messageId when prefilled, else the stamp). */
  readonly #failedAt = new Map<string | number, number>()
  #firsts = 0

  constructor(ctx: RunContext, done: () => void) {
    this.#ctx = ctx
    this.#done = done
    this.#failEvery = ctx.failEvery ?? 0
  }

  run(message: Message): MessageStatus {
    if (this.#failEvery > 0) {
      const { counts, marks } = this.#ctx
      const key = message.properties.messageId ?? stampOf(message.body)
      // Whether it failed before is this task's own record, not message.attempt: the counts then
      // check lapinmq's attempt (retried) and the broker's x-death (deadLettered) against it.
      const failedAt = this.#failedAt.get(key)
      if (failedAt !== undefined) {
        this.#failedAt.delete(key)
        marks.consumerLatency(failedAt)
      } else if (++this.#firsts % this.#failEvery === 0) {
        this.#failedAt.set(key, performance.now())
        counts.failed++
        return MessageStatus.FAIL_RETRY_LATER
      }
      if (message.attempt > 1) {
        counts.retried++
        counts.deadLettered += deadLettersOf(message.headers, this.#ctx.queue)
      }
    }
    this.#done()
    return MessageStatus.SUCCESS
  }
}

async function openConsumer(ctx: RunContext, retry: boolean, done: () => void) {
  const connection = lapinConnection(ctx.url)
  const task = new Task(ctx, done)
  const consumer = new Consumer({
    queueName: ctx.queue,
    concurrency: ctx.prefetch,
    prefetch: ctx.prefetch,
    connection,
    ...(retry && ctx.retryDelays ? { retry: { delays: ctx.retryDelays } } : {}),
    taskFunction: (message) => task.run(message),
  })
  await consumer.start()
  return {
    async close() {
      await consumer.stop()
      await connection.close()
    },
  }
}

function peer(retry: boolean): PeerRun {
  return async (ctx: RunContext) => {
    const { counts, marks } = ctx
    if (ctx.rate === undefined) {
      // Prefilled: from the first delivery to the last success, as in S5.
      const all = deferred()
      let first = true
      const consuming = await openConsumer(ctx, retry, () => {
        if (first) {
          first = false
          marks.start()
        }
        if (++counts.received === ctx.count) {
          marks.stop()
          all.resolve()
        }
      })
      await all.promise
      await consuming.close()
      return
    }
    // At a fixed rate: lapinmq's publisher (as in S6) feeds the queue while the consumer keeps up.
    const consuming = await openConsumer(ctx, retry, () => {
      counts.received++
    })
    const open = publishers.lapinmq
    if (!open) throw new Error('S11: no lapinmq publisher')
    const publishing = await open(ctx)
    marks.start()
    await publishing.run()
    // The last failures come back after the longest delay.
    const waitMs = Math.max(...(ctx.retryDelays ?? [0])) + 5000
    for (let waited = 0; waited < waitMs && counts.received < counts.sent; waited += 10) await sleep(10)
    marks.stop()
    await publishing.close()
    await consuming.close()
  }
}

export const s11: Scenario = {
  id: 'S11',
  title: 'retry ladder (lapinmq with `retry` vs without)',
  headline: 'received',
  prefill: ({ count, rate }) => (rate === undefined ? count : 0),
  ladderQueues: (queue, variant, peerName) =>
    peerName === withRetry && variant.retryDelays
      ? [...[...new Set(variant.retryDelays)].map((ms) => `${queue}.retry.${ms}`), `${queue}.dead`]
      : [],
  verify: ({ counts, prefilled, left, ladderLeft }, variant) => {
    const expected = variant.rate === undefined ? prefilled : counts.sent
    const failures = variant.failEvery ? Math.floor(expected / variant.failEvery) : 0
    return (
      counts.received === expected &&
      counts.sent === counts.confirmed &&
      counts.nacked === 0 &&
      left === 0 &&
      ladderLeft === 0 &&
      counts.failed === failures &&
      counts.retried === failures &&
      counts.deadLettered === failures
    )
  },
  peers: { [withRetry]: peer(true), [withoutRetry]: peer(false) },
}
