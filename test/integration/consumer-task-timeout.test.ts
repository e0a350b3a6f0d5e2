// A task past `taskTimeout` has its message requeued once, its late result
// ignored (not acked, not logged as an outcome), and the other messages in flight on the channel
// untouched; `onTaskTimeout: 'reject'` rejects it instead.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type Message, MessageStatus, Publisher, type TaskTimeoutInfo } from 'lapinmq'
import { declareQueue, queueCount, uniqueName, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues } = cleanedUpAfterFile()

async function freshQueue(prefix: string): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  await declareQueue(queue)
  return queue
}

async function publish(queue: string, ids: string[]): Promise<void> {
  const publisher = new Publisher({ kind: 'async' })
  await publisher.start()
  await Promise.all(ids.map((id) => publisher.sendMessageToQueue(queue, id, { messageId: id })))
  await publisher.stop()
}

function recordingLogger(): {
  lines: string[]
  logger: Record<'debug' | 'info' | 'warn' | 'error', (o: object, m?: string) => void>
} {
  const lines: string[] = []
  const log = (o: object, m?: string): void => {
    lines.push(`${m ?? ''} ${JSON.stringify(o)}`)
  }
  return { lines, logger: { debug: () => {}, info: log, warn: log, error: log } }
}

describe('taskTimeout', () => {
  test('a slow task is requeued once at its deadline, its late result ignored; other in-flight messages untouched', async (t) => {
    const queue = await freshQueue('task-timeout')
    await publish(queue, ['slow', 'held-1', 'held-2'])
    const { lines, logger } = recordingLogger()
    const deliveries: { id: string; redelivered: boolean; at: number }[] = []
    const held: Message[] = []
    let lateResultReturned = false
    const timeouts: TaskTimeoutInfo[] = []
    const consumer = new Consumer({
      queueName: queue,
      concurrency: 3,
      taskTimeout: 500,
      logger,
      taskFunction: async (message) => {
        const id = String(message.properties.messageId)
        deliveries.push({ id, redelivered: message.redelivered, at: performance.now() })
        if (id === 'slow' && !message.redelivered) {
          await sleep(1_500)
          lateResultReturned = true
          return MessageStatus.FAIL_DO_NOT_RETRY // would drop the message, were it not ignored
        }
        if (id.startsWith('held')) {
          held.push(message) // in flight on the channel until the test settles it
          return MessageStatus.HANDLED_VIA_CALLBACK
        }
        return MessageStatus.SUCCESS
      },
    })
    consumers.push(consumer)
    consumer.on('taskTimeout', (info) => timeouts.push(info))
    const t0 = performance.now()
    await consumer.start()
    await waitFor(() => timeouts.length === 1, 5_000, 'the timeout')
    const timedOutAt = performance.now() - t0
    await waitFor(() => deliveries.filter((d) => d.id === 'slow').length === 2, 5_000, 'the redelivery')
    assert.equal(held.length, 2)
    assert.ok(
      held.every((m) => !m.settled),
      'the other in-flight messages were not settled by the timeout',
    )
    await waitFor(() => lateResultReturned, 5_000, 'the late result')
    await sleep(100)
    for (const m of held) m.ack()
    await waitFor(async () => (await queueCount(queue)) === 0 && consumer.unsettled === 0, 5_000, 'all acked')
    await consumer.stop()
    t.diagnostic(`timed out after ${Math.round(timedOutAt)} ms: ${JSON.stringify(timeouts[0])}`)

    assert.deepEqual(
      deliveries.map((d) => [d.id, d.redelivered]),
      [
        ['slow', false],
        ['held-1', false],
        ['held-2', false],
        ['slow', true],
      ],
      'the slow message came back once, the held ones never',
    )
    assert.ok(timedOutAt >= 500 && timedOutAt < 1_200, `timed out after ${Math.round(timedOutAt)} ms`)
    assert.equal(timeouts[0]?.action, 'requeued')
    assert.equal(timeouts[0]?.messageId, 'slow')
    assert.equal(timeouts[0]?.redelivered, false)
    assert.equal(timeouts[0]?.timeoutMs, 500)
    assert.equal(timeouts[0]?.inWorker, false)
    assert.equal(consumer.staleSettles, 0)
    assert.equal(consumer.running, 0)
    // The timeout is the failure (logged with its outcome); the late FAIL_DO_NOT_RETRY is not.
    assert.deepEqual(
      lines.filter((l) => /task failed/.test(l) && !/timed out after 500 ms/.test(l)),
      [],
      'the late result was not logged as an outcome',
    )
    assert.equal(lines.filter((l) => /lapinmq: task timed out/.test(l)).length, 1)
  })

  test("onTaskTimeout: 'reject' drops the message (no redelivery); a task returning its status directly is never timed out", async () => {
    const queue = await freshQueue('task-timeout-reject')
    await publish(queue, ['slow', 'sync'])
    const deliveries: string[] = []
    const timeouts: TaskTimeoutInfo[] = []
    const consumer = new Consumer({
      queueName: queue,
      taskTimeout: 200,
      onTaskTimeout: 'reject',
      taskFunction: (message) => {
        const id = String(message.properties.messageId)
        deliveries.push(id)
        if (id === 'slow') return sleep(600).then(() => MessageStatus.SUCCESS)
        const end = performance.now() + 300 // synchronous: no deadline applies
        while (performance.now() < end) {}
        return MessageStatus.SUCCESS
      },
    })
    consumers.push(consumer)
    consumer.on('taskTimeout', (info) => timeouts.push(info))
    await consumer.start()
    await waitFor(() => deliveries.length === 2, 5_000, 'both deliveries')
    await sleep(800)
    await consumer.stop()
    assert.deepEqual(deliveries, ['slow', 'sync'])
    assert.equal(timeouts.length, 1)
    assert.equal(timeouts[0]?.action, 'rejected')
    assert.equal(await queueCount(queue), 0)
  })

  test('bad taskTimeout / onTaskTimeout values are refused', () => {
    const taskFunction = () => MessageStatus.SUCCESS
    assert.throws(
      () => new Consumer({ queueName: 'q', taskFunction, taskTimeout: -1 }),
      /taskTimeout must be/,
    )
    assert.throws(
      () => new Consumer({ queueName: 'q', taskFunction, taskTimeout: 1.5 }),
      /taskTimeout must be/,
    )
    assert.throws(
      () => new Consumer({ queueName: 'q', taskFunction, onTaskTimeout: 'drop' as 'reject' }),
      /onTaskTimeout must be 'requeue' or 'reject'/,
    )
    assert.doesNotThrow(() => new Consumer({ queueName: 'q', taskFunction, taskTimeout: 0 }))
    assert.doesNotThrow(
      () => new Consumer({ queueName: 'q', taskFunction, taskTimeout: Number.POSITIVE_INFINITY }),
    )
  })
})
