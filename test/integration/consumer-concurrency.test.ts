// `concurrency` bounds the tasks running at once, exactly; prefetch defaults to it, so the consumer
// never holds more unsettled messages than it can run.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, MessageStatus } from 'lapinmq'
import {
  declareQueueWithDeadLetters,
  publishRaw,
  queueCount,
  rabbitmqctl,
  waitFor,
} from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues } = cleanedUpAfterFile()

/**
 * The prefetch the broker holds for the consumers of `queue` (one row per consumer). Asked again
 * while no row shows: on a loaded machine `list_consumers` can answer before its view of the
 * queue's consumers has caught up with the consume-ok the client already got.
 */
async function brokerPrefetch(queue: string): Promise<number[]> {
  for (let attempt = 0; ; attempt++) {
    const out = await rabbitmqctl('list_consumers', 'queue_name', 'prefetch_count')
    const rows = out
      .split('\n')
      .map((line) => line.split('\t'))
      .filter(([name]) => name === queue)
      .map(([, prefetch]) => Number(prefetch))
    if (rows.length > 0 || attempt === 10) return rows
    await sleep(100)
  }
}

async function measure(opts: { concurrency: number; prefetch?: number; messages: number; taskMs: number }) {
  // Dead-lettered messages would have been rejected, not acked.
  const { queue, dlq, queueArgs } = await declareQueueWithDeadLetters('conc')
  queues.push(queue, dlq)
  await publishRaw(
    queue,
    Array.from({ length: opts.messages }, (_, i) => `c${i}`),
  )
  let running = 0
  let maxRunning = 0
  let done = 0
  const consumer = new Consumer({
    queueName: queue,
    queueArgs,
    concurrency: opts.concurrency,
    ...(opts.prefetch === undefined ? {} : { prefetch: opts.prefetch }),
    taskFunction: async () => {
      running++
      maxRunning = Math.max(maxRunning, running)
      await sleep(opts.taskMs)
      running--
      done++
      return MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  let maxUnsettled = 0
  let maxReportedRunning = 0
  const sampler = setInterval(() => {
    maxUnsettled = Math.max(maxUnsettled, consumer.unsettled)
    maxReportedRunning = Math.max(maxReportedRunning, consumer.running)
  }, 2)
  const started = performance.now()
  await consumer.start()
  const prefetch = await brokerPrefetch(queue)
  await waitFor(() => done === opts.messages, 20_000, 'every task')
  const elapsed = performance.now() - started
  clearInterval(sampler)
  await consumer.stop()
  await sleep(100)
  const deadLettered = await queueCount(dlq)
  return { queue, maxRunning, maxUnsettled, maxReportedRunning, prefetch, elapsed, deadLettered }
}

describe('consumer concurrency', () => {
  test('concurrency 3 runs exactly 3 tasks at once, never 4; prefetch defaults to 3', async (t) => {
    const r = await measure({ concurrency: 3, messages: 15, taskMs: 200 })
    t.diagnostic(
      `max running ${r.maxRunning}, max unsettled ${r.maxUnsettled}, broker prefetch ${r.prefetch.join()}, ${Math.round(r.elapsed)} ms`,
    )
    assert.equal(r.maxRunning, 3)
    assert.equal(r.maxReportedRunning, 3)
    assert.ok(r.maxUnsettled <= 3, `unsettled reached ${r.maxUnsettled}`)
    assert.deepEqual(r.prefetch, [3])
    // 15 tasks of 200 ms, 3 at a time: 5 rounds.
    assert.ok(r.elapsed >= 950, `took ${Math.round(r.elapsed)} ms`)
    assert.ok(r.elapsed < 3000, `took ${Math.round(r.elapsed)} ms`)
    assert.equal(await queueCount(r.queue), 0)
    assert.equal(r.deadLettered, 0, 'every SUCCESS was an ack, not a reject')
  })

  test('concurrency 1 runs one at a time', async () => {
    const r = await measure({ concurrency: 1, messages: 5, taskMs: 50 })
    assert.equal(r.maxRunning, 1)
    assert.ok(r.maxUnsettled <= 1, `unsettled reached ${r.maxUnsettled}`)
    assert.deepEqual(r.prefetch, [1])
    assert.equal(r.deadLettered, 0, 'every SUCCESS was an ack, not a reject')
  })

  test('an explicit prefetch above concurrency prefetches more but still runs only `concurrency`', async (t) => {
    const r = await measure({ concurrency: 2, prefetch: 8, messages: 20, taskMs: 50 })
    t.diagnostic(`max running ${r.maxRunning}, max unsettled ${r.maxUnsettled}`)
    assert.equal(r.maxRunning, 2)
    assert.ok(r.maxUnsettled > 2 && r.maxUnsettled <= 8, `unsettled reached ${r.maxUnsettled}`)
    assert.deepEqual(r.prefetch, [8])
    assert.equal(await queueCount(r.queue), 0)
    assert.equal(r.deadLettered, 0, 'every SUCCESS was an ack, not a reject')
  })
})
