// RabbitMQ closes a channel (406 PRECONDITION_FAILED) whose delivery stays
// unacked longer than `consumer_timeout`, which requeues every message on it. On a private node
// with a 5 s consumer_timeout (checked every second: channel_tick_interval, 60 s by default), a task
// of 8 s: with `taskTimeout` below the consumer_timeout the message is requeued by lapinmq in time
// and the broker never closes the channel; without it the broker closes the channel, lapinmq
// reports CONSUMER_TIMEOUT, reopens the channel and the message is delivered again.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  Connection,
  Consumer,
  type LapinError,
  MessageStatus,
  Publisher,
  type TaskTimeoutInfo,
} from 'lapinmq'
import { usePrivateBroker, watchConnection } from '../helpers/fault-setup.ts'
import { assertOneConsumer, declarePrivateQueue, eventually } from '../helpers/fault-traffic.ts'

const consumerTimeout = 5_000
const taskMs = 8_000
const node = usePrivateBroker({
  config: `consumer_timeout = ${consumerTimeout}`,
  advancedConfig: '[{rabbit, [{channel_tick_interval, 1000}]}].',
})

async function publishOne(queue: string, id: string): Promise<void> {
  await declarePrivateQueue(node.broker.url, queue)
  const connection = new Connection({ url: node.broker.url, name: 'ctimeout-pub' })
  const publisher = new Publisher({ kind: 'sync', connection })
  await publisher.start()
  await publisher.sendMessageToQueue(queue, id, { messageId: id })
  await publisher.stop()
  await connection.close()
}

/** A consumer whose task takes 8 s on a first delivery and succeeds at once on a redelivery. */
function slowConsumer(queue: string, name: string, taskTimeout: number) {
  const connection = new Connection({ url: node.broker.url, name })
  const deliveries: { redelivered: boolean; at: number }[] = []
  let lateResults = 0
  const errors: { error: LapinError; at: number }[] = []
  const timeouts: TaskTimeoutInfo[] = []
  const consumer = new Consumer({
    queueName: queue,
    connection,
    taskTimeout,
    taskFunction: async (message) => {
      deliveries.push({ redelivered: message.redelivered, at: performance.now() })
      if (message.redelivered) return MessageStatus.SUCCESS
      await sleep(taskMs)
      lateResults++
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('error', (error) => errors.push({ error, at: performance.now() }))
  consumer.on('taskTimeout', (info) => timeouts.push(info))
  return { connection, consumer, deliveries, errors, timeouts, lateResults: () => lateResults }
}

async function drained(queue: string): Promise<boolean> {
  const { ready, unacked } = await node.broker.queueMessages(queue)
  return ready === 0 && unacked === 0
}

test('taskTimeout below consumer_timeout: lapinmq requeues in time, the broker never closes the channel', async (t) => {
  const queue = 'ctimeout-guarded'
  await publishOne(queue, 'm1')
  const c = slowConsumer(queue, 'ctimeout-guarded-con', 3_000)
  const watch = watchConnection(c.connection)
  try {
    const t0 = performance.now()
    await c.consumer.start()
    // Past the late result (8 s) and two broker ticks beyond it.
    const done = await eventually(async () => c.lateResults() === 1 && (await drained(queue)), 15_000)
    await sleep(2_000)
    const log = await node.broker.logText()
    t.diagnostic(
      `deliveries at ${c.deliveries.map((d) => `${Math.round(d.at - t0)} ms${d.redelivered ? ' (redelivered)' : ''}`).join(', ')}; timeouts: ${JSON.stringify(c.timeouts)}`,
    )
    assert.ok(done, 'the message was acked on its redelivery and the late task ended')
    assert.deepEqual(
      c.deliveries.map((d) => d.redelivered),
      [false, true],
    )
    assert.equal(c.timeouts.length, 1)
    assert.deepEqual(c.errors, [], 'no channel error')
    assert.deepEqual(watch.disconnects, [])
    assert.doesNotMatch(log, /acknowledgement .*timed out/, 'the broker never timed the delivery out')
    assert.equal(c.consumer.staleSettles, 0, 'the channel never closed')
    await assertOneConsumer(node.broker, queue, 'ctimeout-guarded-con')
  } finally {
    await c.consumer.stop()
    await c.connection.close()
  }
})

test('no taskTimeout: the broker closes the channel at consumer_timeout; lapinmq reports CONSUMER_TIMEOUT and recovers', async (t) => {
  const queue = 'ctimeout-unguarded'
  await publishOne(queue, 'm1')
  const c = slowConsumer(queue, 'ctimeout-unguarded-con', 0)
  const watch = watchConnection(c.connection)
  try {
    const t0 = performance.now()
    await c.consumer.start()
    const done = await eventually(
      async () => c.lateResults() === 1 && c.deliveries.length === 2 && (await drained(queue)),
      20_000,
    )
    const errorAt = c.errors[0]?.at
    t.diagnostic(
      `deliveries at ${c.deliveries.map((d) => `${Math.round(d.at - t0)} ms${d.redelivered ? ' (redelivered)' : ''}`).join(', ')}; errors: ${c.errors.map(({ error: e, at }) => `at ${Math.round(at - t0)} ms ${e.code} (${e.replyCode}): ${e.message}`).join('; ')}`,
    )
    assert.ok(done, 'the message came back on the reopened channel and was acked')
    assert.deepEqual(
      c.errors.map(({ error: e }) => [e.code, e.replyCode]),
      [['CONSUMER_TIMEOUT', 406]],
      'the broker closing the channel was reported',
    )
    assert.match(c.errors[0]?.error.message ?? '', /taskTimeout/)
    assert.ok(
      errorAt !== undefined && errorAt - t0 >= consumerTimeout && errorAt - t0 < taskMs,
      'the broker closed the channel after consumer_timeout, while the task still ran',
    )
    // The task still held the consumer's only slot: the redelivery waited for it to end.
    assert.deepEqual(
      c.deliveries.map((d) => d.redelivered),
      [false, true],
    )
    assert.equal(c.consumer.staleSettles, 1, "the late task's ack was dropped (its channel had closed)")
    assert.deepEqual(watch.disconnects, [], 'only the channel closed, not the connection')
    await assertOneConsumer(node.broker, queue, 'ctimeout-unguarded-con')
  } finally {
    await c.consumer.stop()
    await c.connection.close()
  }
})
