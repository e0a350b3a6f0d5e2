// stop() is graceful and complete: it waits for running tasks and callback settles (up to its
// timeout), every ack a finished task decided reaches the broker, and no acked message comes back.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type Message, MessageStatus, Publisher } from 'lapinmq'
import { declareQueueWithDeadLetters, queueCount, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues } = cleanedUpAfterFile()

/** The arguments each queue was declared with, which its consumers must declare it with too. */
const argsOf = new Map<string, Record<string, unknown>>()
const dlqOf = new Map<string, string>()

/** A fresh queue that dead-letters what is rejected without requeue (an ack leaves nothing there). */
async function freshQueue(prefix: string): Promise<string> {
  const { queue, dlq, queueArgs } = await declareQueueWithDeadLetters(prefix)
  queues.push(queue, dlq)
  argsOf.set(queue, queueArgs)
  dlqOf.set(queue, dlq)
  return queue
}

/** Asserts that nothing of `queue` was rejected without requeue: every settle was an ack or a requeue. */
async function assertNothingDeadLettered(queue: string): Promise<void> {
  await sleep(100)
  assert.equal(
    await queueCount(dlqOf.get(queue) ?? ''),
    0,
    'messages dead-lettered (rejected without requeue)',
  )
}

/** Publishes `count` messages with lapinmq, each with messageId `id-<i>`, and waits for the confirms. */
async function publish(queue: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `id-${i}`)
  const publisher = new Publisher({ kind: 'async' })
  await publisher.start()
  await Promise.all(ids.map((id) => publisher.sendMessageToQueue(queue, id, { messageId: id })))
  await publisher.stop()
  return ids
}

function track(consumer: Consumer): Consumer {
  consumers.push(consumer)
  return consumer
}

describe('consumer stop', () => {
  test('stop() mid-run: running tasks finish, acked messages never come back, nothing is lost', async (t) => {
    const total = 300
    const queue = await freshQueue('stop-busy')
    const ids = await publish(queue, total)

    const succeeded: string[] = []
    let running = 0
    let startedAfterStop = 0
    let finishedAfterStop = 0
    let stopCalled = false
    let stopResolved = false
    const first = track(
      new Consumer({
        queueName: queue,
        queueArgs: argsOf.get(queue) ?? {},
        concurrency: 5,
        taskFunction: async (message) => {
          if (stopCalled) startedAfterStop++
          running++
          await sleep(20 + Math.random() * 40)
          running--
          if (stopResolved) finishedAfterStop++
          succeeded.push(String(message.properties.messageId))
          return MessageStatus.SUCCESS
        },
      }),
    )
    await first.start()
    await waitFor(() => succeeded.length >= 80, 20_000, '80 successes')
    stopCalled = true
    const stopping = first.stop()
    const runningAtStop = running
    await stopping
    stopResolved = true
    assert.equal(running, 0, 'no task still running after stop() resolved')
    await sleep(200)
    assert.equal(finishedAfterStop, 0)
    assert.equal(startedAfterStop, 0, 'no task started once stop() was called')
    assert.equal(new Set(succeeded).size, succeeded.length)

    const second: string[] = []
    const redeliveredInSecond: string[] = []
    const drainer = track(
      new Consumer({
        queueName: queue,
        queueArgs: argsOf.get(queue) ?? {},
        concurrency: 5,
        taskFunction: (message) => {
          const id = String(message.properties.messageId)
          second.push(id)
          if (message.redelivered) redeliveredInSecond.push(id)
          return MessageStatus.SUCCESS
        },
      }),
    )
    await drainer.start()
    await waitFor(() => succeeded.length + second.length >= total, 20_000, 'the rest of the queue')
    await sleep(300)
    await drainer.stop()

    const acked = new Set(succeeded)
    const duplicates = second.filter((id) => acked.has(id))
    t.diagnostic(
      `first run: ${succeeded.length} succeeded (${runningAtStop} running at stop); second run: ${second.length} delivered, ${redeliveredInSecond.length} redelivered; duplicates: ${duplicates.length}`,
    )
    assert.deepEqual(duplicates, [])
    assert.equal(succeeded.length + second.length, total)
    assert.deepEqual([...new Set([...succeeded, ...second])].sort(), [...ids].sort())
    assert.equal(await queueCount(queue), 0)
    await assertNothingDeadLettered(queue)
  })

  test('stop() waits for a HANDLED_VIA_CALLBACK message acked 200 ms later', async () => {
    const queue = await freshQueue('stop-callback')
    await publish(queue, 1)
    let held: Message | undefined
    let ackedAt = 0
    const consumer = track(
      new Consumer({
        queueName: queue,
        queueArgs: argsOf.get(queue) ?? {},
        taskFunction: (message) => {
          held = message
          setTimeout(() => {
            ackedAt = performance.now()
            message.ack()
          }, 200)
          return MessageStatus.HANDLED_VIA_CALLBACK
        },
      }),
    )
    await consumer.start()
    await waitFor(() => held !== undefined, 5000, 'the delivery')
    const stopCalledAt = performance.now()
    await consumer.stop()
    const stoppedAt = performance.now()
    assert.ok(ackedAt > 0, 'the ack happened before stop() resolved')
    assert.ok(stoppedAt >= ackedAt)
    assert.ok(stoppedAt - stopCalledAt >= 150, `stop took ${Math.round(stoppedAt - stopCalledAt)} ms`)
    assert.equal(held?.settled, true)
    assert.equal(consumer.staleSettles, 0)
    assert.equal(await queueCount(queue), 0, 'the ack reached the broker before the channel closed')
    await assertNothingDeadLettered(queue)
  })

  test('stop({ timeout }) gives up on a hung task; the message is redelivered, its late ack dropped', async () => {
    const queue = await freshQueue('stop-hung')
    await publish(queue, 1)
    let delivered = 0
    let lateAckDone = false
    const consumer = track(
      new Consumer({
        queueName: queue,
        queueArgs: argsOf.get(queue) ?? {},
        taskFunction: async () => {
          delivered++
          await sleep(1500) // far past the stop timeout
          lateAckDone = true
          return MessageStatus.SUCCESS
        },
      }),
    )
    await consumer.start()
    await waitFor(() => delivered === 1, 5000, 'the delivery')
    const t0 = performance.now()
    await consumer.stop({ timeout: 300 })
    const took = performance.now() - t0
    assert.ok(took >= 290 && took < 1200, `stop took ${Math.round(took)} ms`)
    assert.equal(lateAckDone, false)
    assert.equal(await queueCount(queue), 1, 'requeued when the channel closed')

    await waitFor(() => lateAckDone, 5000, 'the hung task to end')
    assert.equal(consumer.staleSettles, 1, 'the late ack was dropped, not sent on another channel')

    const again: boolean[] = []
    const drainer = track(
      new Consumer({
        queueName: queue,
        queueArgs: argsOf.get(queue) ?? {},
        taskFunction: (message) => {
          again.push(message.redelivered)
          return MessageStatus.SUCCESS
        },
      }),
    )
    await drainer.start()
    await waitFor(() => again.length === 1, 5000, 'the redelivery')
    await sleep(200)
    await drainer.stop()
    assert.deepEqual(again, [true])
    assert.equal(await queueCount(queue), 0)
    await assertNothingDeadLettered(queue)
  })

  test('stop() requeues the prefetched messages whose task never started: delivered again, once each', async () => {
    const total = 10
    const queue = await freshQueue('stop-prefetched')
    const ids = await publish(queue, total)
    const started: string[] = []
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const consumer = track(
      new Consumer({
        queueName: queue,
        queueArgs: argsOf.get(queue) ?? {},
        concurrency: 1,
        prefetch: total,
        taskFunction: async (message) => {
          started.push(String(message.properties.messageId))
          await held
          return MessageStatus.SUCCESS
        },
      }),
    )
    await consumer.start()
    // One task runs; the other nine wait in the consumer, prefetched.
    await waitFor(() => started.length === 1 && consumer.unsettled === total, 5000, 'the prefetch to fill')
    assert.equal(await queueCount(queue), 0, 'every message is out of the queue, held by the consumer')
    const stopping = consumer.stop()
    release()
    await stopping
    assert.equal(started.length, 1, 'no task started once stop() was called')
    // The running task's ack went out; the nine that never started are back in the queue.
    await waitFor(async () => (await queueCount(queue)) === total - 1, 5000, 'the requeued messages')

    const again: { id: string; redelivered: boolean }[] = []
    const drainer = track(
      new Consumer({
        queueName: queue,
        queueArgs: argsOf.get(queue) ?? {},
        taskFunction: (message) => {
          again.push({ id: String(message.properties.messageId), redelivered: message.redelivered })
          return MessageStatus.SUCCESS
        },
      }),
    )
    await drainer.start()
    await waitFor(() => again.length >= total - 1, 5000, 'the requeued messages delivered again')
    await sleep(200)
    await drainer.stop()
    assert.deepEqual(again.map((a) => a.id).sort(), ids.filter((id) => id !== started[0]).sort())
    assert.ok(
      again.every((a) => a.redelivered),
      'each was delivered before, so the broker flags it redelivered',
    )
    assert.equal(await queueCount(queue), 0)
    await assertNothingDeadLettered(queue)
  })
})
