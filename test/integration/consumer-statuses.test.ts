// Each MessageStatus has its broker effect, and anything that is not a status means "retry later".
// Settling is idempotent: extra settles never reach the broker (which would close the channel with
// 406 PRECONDITION_FAILED "unknown delivery tag").
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type ConsumerOptions, type LapinError, type Message, MessageStatus } from 'lapinmq'
import {
  declareQueueWithDeadLetters,
  drainQueue,
  publishRaw,
  queueCount,
  rabbitmqctl,
  waitFor,
} from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

interface Delivery {
  body: string
  redelivered: boolean
  channelId: number
}

const { consumers, queues } = cleanedUpAfterFile()
const errors: LapinError[] = []
/** The arguments each queue was declared with, which its consumer must declare it with too. */
const argsOf = new Map<string, Record<string, unknown>>()

/**
 * A durable queue holding `bodies`, with a dead-letter queue: what a reject without requeue sends
 * there is how an ack (nothing there) is told from a reject (the message there).
 */
async function queueWith(prefix: string, bodies: string[]): Promise<{ queue: string; dlq: string }> {
  const { queue, dlq, queueArgs } = await declareQueueWithDeadLetters(prefix)
  queues.push(queue, dlq)
  argsOf.set(queue, queueArgs)
  await publishRaw(queue, bodies)
  return { queue, dlq }
}
/** Asserts that nothing was dead-lettered: every settle was an ack or a requeue. */
async function assertNothingDeadLettered(dlq: string): Promise<void> {
  // A reject reaches the dead-letter queue a moment after the consumer sent it.
  await sleep(100)
  assert.equal(await queueCount(dlq), 0, 'messages rejected without requeue (dead-lettered)')
}

/** Starts a consumer whose task records every delivery, then defers to `decide`. */
async function consume(
  queueName: string,
  decide: (message: Message, deliveries: Delivery[]) => unknown,
  options: Partial<ConsumerOptions> = {},
): Promise<{ consumer: Consumer; deliveries: Delivery[] }> {
  const deliveries: Delivery[] = []
  const consumer = new Consumer({
    queueName,
    queueArgs: argsOf.get(queueName) ?? {},
    ...options,
    taskFunction: (message) => {
      deliveries.push({
        body: message.body.toString(),
        redelivered: message.redelivered,
        channelId: message.channelId,
      })
      return decide(message, deliveries) as MessageStatus | Promise<MessageStatus>
    },
  })
  consumer.on('error', (err) => errors.push(err))
  consumers.push(consumer)
  await consumer.start()
  return { consumer, deliveries }
}

describe('consumer statuses', () => {
  test('SUCCESS acks: the message is gone, never redelivered, never dead-lettered', async () => {
    const { queue, dlq } = await queueWith('st-success', ['s1'])
    const { consumer, deliveries } = await consume(queue, () => MessageStatus.SUCCESS)
    await waitFor(() => deliveries.length === 1, 5000, 'the delivery')
    await sleep(300)
    await consumer.stop()
    assert.deepEqual(
      deliveries.map((d) => [d.body, d.redelivered]),
      [['s1', false]],
    )
    assert.equal(await queueCount(queue), 0)
    await assertNothingDeadLettered(dlq)
  })

  test('FAIL_RETRY_LATER requeues: delivered again with redelivered === true', async () => {
    const { queue, dlq } = await queueWith('st-retry', ['r1'])
    const { consumer, deliveries } = await consume(queue, (_m, all) =>
      all.length === 1 ? MessageStatus.FAIL_RETRY_LATER : MessageStatus.SUCCESS,
    )
    await waitFor(() => deliveries.length === 2, 5000, 'the redelivery')
    await sleep(200)
    await consumer.stop()
    assert.deepEqual(
      deliveries.map((d) => [d.body, d.redelivered]),
      [
        ['r1', false],
        ['r1', true],
      ],
    )
    assert.equal(await queueCount(queue), 0)
    await assertNothingDeadLettered(dlq)
  })

  test('FAIL_DO_NOT_RETRY rejects without requeue: dead-lettered, not redelivered', async () => {
    const { queue, dlq } = await queueWith('st-reject', ['d1'])
    const { consumer, deliveries } = await consume(queue, () => MessageStatus.FAIL_DO_NOT_RETRY)
    await waitFor(async () => (await queueCount(dlq)) === 1, 5000, 'the dead letter')
    await sleep(200)
    await consumer.stop()
    assert.deepEqual(
      deliveries.map((d) => [d.body, d.redelivered]),
      [['d1', false]],
    )
    assert.equal(await queueCount(queue), 0)
    const dead = await drainQueue(dlq)
    assert.deepEqual(
      dead.map((m) => m.content.toString()),
      ['d1'],
    )
    const deaths = dead[0]?.properties.headers?.['x-death'] as { reason: string; queue: string }[] | undefined
    const death = deaths?.[0]
    assert.equal(death?.reason, 'rejected')
    assert.equal(death?.queue, queue)
  })

  test('HANDLED_VIA_CALLBACK leaves the message unacked until message.ack()', async () => {
    const { queue, dlq } = await queueWith('st-callback', ['c1'])
    let held: Message | undefined
    const { consumer, deliveries } = await consume(queue, (message) => {
      held = message
      return MessageStatus.HANDLED_VIA_CALLBACK
    })
    await waitFor(() => held !== undefined, 5000, 'the delivery')
    await sleep(300)
    // Held by the consumer: not ready in the queue, unacked at the broker, not redelivered.
    assert.equal(await queueCount(queue), 0)
    assert.equal(consumer.unsettled, 1)
    assert.equal(held?.settled, false)
    const row = (await rabbitmqctl('list_queues', 'name', 'messages_unacknowledged'))
      .split('\n')
      .find((line) => line.startsWith(`${queue}\t`))
    assert.equal(row, `${queue}\t1`)
    held?.ack()
    assert.equal(consumer.unsettled, 0)
    await sleep(200)
    await consumer.stop()
    assert.equal(await queueCount(queue), 0, 'acked, so not requeued when the channel closed')
    await assertNothingDeadLettered(dlq)
    assert.deepEqual(
      deliveries.map((d) => [d.body, d.redelivered]),
      [['c1', false]],
    )
  })

  const bad: [string, (message: Message) => unknown][] = [
    [
      'a thrown error',
      () => {
        throw new Error('task failed')
      },
    ],
    ['a rejected promise', () => Promise.reject(new Error('task rejected'))],
    ["the string 'ok'", async () => 'ok'],
    ['undefined', async () => undefined],
    ['42', () => 42],
    ['null', async () => null],
    ["'SUCCESS' (the key, not the value)", async () => 'SUCCESS'],
  ]
  for (const [what, misbehave] of bad) {
    test(`${what} counts as FAIL_RETRY_LATER: redelivered`, async () => {
      const { queue, dlq } = await queueWith('st-bad', ['b1'])
      const { consumer, deliveries } = await consume(queue, (message, all) =>
        all.length === 1 ? misbehave(message) : MessageStatus.SUCCESS,
      )
      await waitFor(() => deliveries.length === 2, 5000, 'the redelivery')
      await sleep(200)
      await consumer.stop()
      assert.deepEqual(
        deliveries.map((d) => [d.body, d.redelivered]),
        [
          ['b1', false],
          ['b1', true],
        ],
      )
      assert.equal(await queueCount(queue), 0)
      await assertNothingDeadLettered(dlq)
    })
  }

  test("a task's failure is logged through the consumer's own logger", async () => {
    const { queue } = await queueWith('st-logger', ['l1'])
    const warnings: string[] = []
    const logger = {
      debug: () => {},
      info: () => {},
      warn: (_fields: unknown, msg?: string) => warnings.push(String(msg)),
      error: () => {},
    }
    const { consumer, deliveries } = await consume(
      queue,
      (_m, all) => {
        if (all.length === 1) throw new Error('boom')
        return MessageStatus.SUCCESS
      },
      { logger },
    )
    await waitFor(() => deliveries.length === 2, 5000, 'the redelivery')
    await consumer.stop()
    assert.deepEqual(warnings, ['lapinmq: task failed'])
  })

  test('a logger that throws while a failure is logged breaks nothing: requeued, same channel', async () => {
    // Tasks that return their status directly are settled inside amqplib's delivery dispatch: a
    // throw escaping there would end the connection (amqplib's frameError).
    const { queue, dlq } = await queueWith('st-bad-logger', ['b1', 'b2'])
    const throwing = () => {
      throw new Error('logger down')
    }
    const logger = { debug: throwing, info: throwing, warn: throwing, error: throwing }
    const { consumer, deliveries } = await consume(
      queue,
      (message, all) => {
        const seen = all.filter((d) => d.body === message.body.toString()).length
        if (seen === 1) throw new Error('boom')
        // Not a status: logged (the logger throws again), then requeued.
        return seen === 2 && message.body.toString() === 'b1' ? 'junk' : MessageStatus.SUCCESS
      },
      { logger, prefetch: 1, concurrency: 1 },
    )
    await waitFor(() => deliveries.length >= 5, 5000, 'every redelivery')
    await sleep(200)
    await consumer.stop()
    assert.deepEqual(deliveries.map((d) => `${d.body} ${d.redelivered}`).sort(), [
      'b1 false',
      'b1 true',
      'b1 true',
      'b2 false',
      'b2 true',
    ])
    assert.equal(new Set(deliveries.map((d) => d.channelId)).size, 1, 'one channel throughout')
    assert.equal(await queueCount(queue), 0)
    await assertNothingDeadLettered(dlq)
  })

  test('ack() twice, then reject() and rejectRetry(), sends one settle: the channel survives', async () => {
    const { queue, dlq } = await queueWith('st-idem', ['i1', 'i2', 'i3'])
    const settledFlags: boolean[] = []
    const { consumer, deliveries } = await consume(queue, (message) => {
      if (message.body.toString() === 'i1') {
        message.ack()
        message.ack()
        message.reject()
        message.rejectRetry()
        settledFlags.push(message.settled)
        // SUCCESS makes the consumer ack once more: that one must be dropped too.
        return MessageStatus.SUCCESS
      }
      return MessageStatus.SUCCESS
    })
    await waitFor(() => deliveries.length >= 3, 5000, 'three deliveries')
    await sleep(300)
    const unsettledBeforeStop = consumer.unsettled
    await consumer.stop()
    assert.deepEqual(errors, [])
    assert.deepEqual(settledFlags, [true])
    assert.equal(unsettledBeforeStop, 0)
    // prefetch 1: i2 comes only after i1's ack, so a second settle of i1 (406, channel closed)
    // would have made i2 or i3 come again, on a new channel.
    assert.deepEqual(
      deliveries.map((d) => [d.body, d.redelivered]),
      [
        ['i1', false],
        ['i2', false],
        ['i3', false],
      ],
    )
    assert.equal(new Set(deliveries.map((d) => d.channelId)).size, 1, 'one channel throughout')
    assert.equal(consumer.staleSettles, 0)
    assert.equal(await queueCount(queue), 0)
    // The first settle (an ack) went out; the reject() and rejectRetry() after it did not.
    await assertNothingDeadLettered(dlq)
  })
})
