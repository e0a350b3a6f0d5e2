// The retry ladder: a failed message waits in a delay queue and comes back, as many times as there
// are delays, then lands in the dead-letter queue with headers saying why; a forged attempt counter
// changes nothing; a refused or timed-out task counts like any failure.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type ConsumerOptions, type Message, MessageStatus, Publisher } from 'lapinmq'
import {
  consumerCount,
  declareExchange,
  declareQueue,
  deleteQueue,
  drainQueue,
  publishRaw,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues, exchanges } = cleanedUpAfterFile()
const publisher = new Publisher({ kind: 'async' })
before(() => publisher.start())
after(() => publisher.stop())

interface Seen {
  body: string
  attempt: number
  at: number
  headers: Record<string, unknown>
}

/** A work queue name, with its ladder's queues listed for cleanup. */
function workQueue(prefix: string, delays: readonly number[]): string {
  const queue = uniqueName(prefix)
  queues.push(queue, `${queue}.dead`, ...new Set(delays.map((ms) => `${queue}.retry.${ms}`)))
  return queue
}

/** Starts a consumer with `retry` whose task records each delivery, then returns what `decide` says. */
async function consume(
  queue: string,
  delays: readonly number[],
  decide: (message: Message) => unknown,
  options: Partial<ConsumerOptions> = {},
): Promise<Seen[]> {
  const seen: Seen[] = []
  const consumer = new Consumer({
    queueName: queue,
    retry: { delays },
    ...options,
    taskFunction: (message) => {
      const body = message.body.toString()
      seen.push({ body, attempt: message.attempt, at: performance.now(), headers: message.headers })
      return decide(message) as MessageStatus
    },
  })
  consumers.push(consumer)
  await consumer.start()
  return seen
}

describe('retry ladder', () => {
  test('a message that always fails is delivered once per delay plus once, the gaps at least each delay, then dead-lettered with its attempt count and last error', async () => {
    const delays = [300, 600, 1200]
    const exchange = uniqueName('retry-x')
    exchanges.push(exchange)
    await declareExchange(exchange, 'direct')
    const queue = workQueue('retry-always-fails', delays)
    const seen = await consume(queue, delays, () => MessageStatus.FAIL_RETRY_LATER, {
      exchange,
      bindingKeys: ['jobs.key'],
    })
    await publisher.sendMessage(exchange, 'jobs.key', 'always fails', { messageId: 'm-1' })
    await waitFor(async () => (await queueCount(`${queue}.dead`)) === 1, 10_000, 'the dead letter')
    await sleep(300)
    assert.deepEqual(
      seen.map((s) => s.attempt),
      [1, 2, 3, 4],
      'delivered exactly 4 times, attempt 1..4',
    )
    for (const [i, delay] of delays.entries()) {
      const gap = (seen[i + 1] as Seen).at - (seen[i] as Seen).at
      assert.ok(gap >= delay - 5, `gap ${i + 1} is ${Math.round(gap)} ms, below its delay ${delay} ms`)
      assert.ok(gap <= delay + 1000, `gap ${i + 1} is ${Math.round(gap)} ms, more than ${delay} + 1000 ms`)
    }
    const [dead] = await drainQueue(`${queue}.dead`)
    assert.ok(dead)
    const headers = dead.properties.headers as Record<string, unknown>
    assert.equal(dead.content.toString(), 'always fails')
    assert.equal(dead.properties.messageId, 'm-1', 'properties kept')
    assert.equal(headers['x-lapinmq-attempt'], 4)
    assert.equal(headers['x-lapinmq-last-error'], 'fail_retry_later')
    assert.equal(headers['x-lapinmq-queue'], queue)
    assert.equal(headers['x-lapinmq-original-exchange'], exchange)
    assert.equal(headers['x-lapinmq-original-routing-key'], 'jobs.key')
    const first = headers['x-lapinmq-first-failure'] as number
    assert.ok(Math.abs(first - Date.now()) < 30_000, 'first failure: ms since the epoch')
    // The second delivery came back from the delay queue through the default exchange.
    assert.equal((seen[1] as Seen).headers['x-lapinmq-attempt'], 1)
    for (const ms of new Set(delays)) assert.equal(await queueCount(`${queue}.retry.${ms}`), 0)
    assert.equal(await queueCount(queue), 0)
  })

  test('head of line: behind a poison message, 500 messages are done before its second attempt (concurrency 1)', async () => {
    const delays = [1500]
    const queue = workQueue('retry-head-of-line', delays)
    let done = 0
    let doneAtSecondAttempt = -1
    const seen = await consume(queue, delays, (message) => {
      if (message.body.toString() !== 'poison') {
        done++
        return MessageStatus.SUCCESS
      }
      if (message.attempt === 2) doneAtSecondAttempt = done
      return message.attempt === 1 ? MessageStatus.FAIL_RETRY_LATER : MessageStatus.SUCCESS
    })
    await publisher.sendMessageToQueue(queue, 'poison')
    await Promise.all(Array.from({ length: 500 }, (_, i) => publisher.sendMessageToQueue(queue, `good ${i}`)))
    await waitFor(() => doneAtSecondAttempt >= 0, 15_000, "the poison message's second attempt")
    assert.equal(doneAtSecondAttempt, 500, 'every good message done before the second attempt')
    assert.equal(seen.filter((s) => s.body === 'poison').length, 2)
  })

  test('FAIL_DO_NOT_RETRY goes straight to the dead-letter queue with its headers', async () => {
    const delays = [200, 400]
    const queue = workQueue('retry-do-not-retry', delays)
    const seen = await consume(queue, delays, () => MessageStatus.FAIL_DO_NOT_RETRY)
    await publisher.sendMessageToQueue(queue, 'refused')
    await waitFor(async () => (await queueCount(`${queue}.dead`)) === 1, 10_000, 'the dead letter')
    const [dead] = await drainQueue(`${queue}.dead`)
    const headers = dead?.properties.headers as Record<string, unknown>
    assert.equal(headers['x-lapinmq-attempt'], 1)
    assert.equal(headers['x-lapinmq-last-error'], 'fail_do_not_retry')
    assert.equal(headers['x-lapinmq-original-routing-key'], queue)
    assert.equal(seen.length, 1, 'delivered once')
  })

  test('a thrown error and a task timeout count as attempts, with their reasons', async () => {
    const delays = [200]
    const queue = workQueue('retry-throw-timeout', delays)
    const seen = await consume(
      queue,
      delays,
      (message) => {
        if (message.attempt === 1) throw new TypeError('the database said no')
        // Attempt 2 never ends: the task timeout is its failure, the last one.
        return new Promise(() => {})
      },
      { taskTimeout: 300 },
    )
    await publisher.sendMessageToQueue(queue, 'slow')
    await waitFor(async () => (await queueCount(`${queue}.dead`)) === 1, 10_000, 'the dead letter')
    assert.equal((seen[1] as Seen).headers['x-lapinmq-last-error'], 'TypeError: the database said no')
    const [dead] = await drainQueue(`${queue}.dead`)
    const headers = dead?.properties.headers as Record<string, unknown>
    assert.equal(headers['x-lapinmq-attempt'], 2)
    assert.equal(headers['x-lapinmq-last-error'], 'the task timed out after 300 ms')
  })

  test('forged attempt counters (-1, 1e12, "x") are not trusted: the whole ladder runs, then the dead-letter queue', async () => {
    const delays = [100, 200]
    const queue = workQueue('retry-forged', delays)
    const seen = await consume(queue, delays, () => MessageStatus.FAIL_RETRY_LATER, { concurrency: 3 })
    const forged: unknown[] = [-1, 1e12, 'x']
    for (const [i, value] of forged.entries()) {
      await publisher.sendMessageToQueue(queue, `forged ${i}`, { headers: { 'x-lapinmq-attempt': value } })
    }
    await waitFor(async () => (await queueCount(`${queue}.dead`)) === 3, 10_000, 'three dead letters')
    for (const i of forged.keys()) {
      const attempts = seen.filter((s) => s.body === `forged ${i}`).map((s) => s.attempt)
      assert.deepEqual(attempts, [1, 2, 3], `forged ${String(forged[i])}: attempts`)
    }
    const dead = await drainQueue(`${queue}.dead`)
    for (const m of dead)
      assert.equal((m.properties.headers as Record<string, unknown>)['x-lapinmq-attempt'], 3)
  })

  test('a delay queue deleted under the consumer: the failed message is requeued (not lost), the queue declared again, the ladder goes on', async () => {
    const delays = [200]
    const queue = workQueue('retry-deleted-delay-queue', delays)
    const seen = await consume(queue, delays, (message) =>
      message.attempt === 1 ? MessageStatus.FAIL_RETRY_LATER : MessageStatus.SUCCESS,
    )
    await deleteQueue(`${queue}.retry.200`)
    await publisher.sendMessageToQueue(queue, 'moved later')
    await waitFor(() => seen.some((s) => s.attempt === 2), 10_000, 'the retry after the queue came back')
    const bodies = seen.map((s) => [s.body, s.attempt, s.headers['x-lapinmq-attempt'] ?? null])
    // Its first copy was returned: the original came back (attempt 1 again), then moved.
    assert.deepEqual(bodies, [
      ['moved later', 1, null],
      ['moved later', 1, null],
      ['moved later', 2, 1],
    ])
    assert.equal(await queueCount(`${queue}.retry.200`), 0, 'the delay queue exists again')
  })

  test('on a quorum queue bound to an exchange: retried, then done', async () => {
    const delays = [200]
    const exchange = uniqueName('retry-qx')
    exchanges.push(exchange)
    await declareExchange(exchange, 'topic')
    const queue = workQueue('retry-quorum', delays)
    const seen = await consume(
      queue,
      delays,
      (message) => (message.attempt === 1 ? MessageStatus.FAIL_RETRY_LATER : MessageStatus.SUCCESS),
      { queueType: 'quorum', exchange, bindingKeys: ['orders.*'] },
    )
    await publisher.sendMessage(exchange, 'orders.created', 'quorum')
    await waitFor(() => seen.length === 2, 10_000, 'the retry')
    assert.deepEqual(
      seen.map((s) => s.attempt),
      [1, 2],
    )
    assert.equal((seen[1] as Seen).headers['x-lapinmq-original-routing-key'], 'orders.created')
    await sleep(200)
    assert.equal(await queueCount(`${queue}.dead`), 0)
    assert.equal(await queueCount(queue), 0)
  })
})

describe('requeue backoff without retry', () => {
  /** A poison message at the head of a fresh queue, `good` messages behind it. */
  async function poisonThenGood(prefix: string, good: number): Promise<string> {
    const queue = uniqueName(prefix)
    queues.push(queue)
    // Declared (by a consumer started and stopped) so that the messages wait for the real one.
    const declaring = new Consumer({ queueName: queue, taskFunction: () => MessageStatus.SUCCESS })
    await declaring.start()
    await declaring.stop()
    await publisher.sendMessageToQueue(queue, 'poison')
    await Promise.all(
      Array.from({ length: good }, (_, i) => publisher.sendMessageToQueue(queue, `good ${i}`)),
    )
    return queue
  }

  test('a poison message at the head, concurrency 1: at most 40 deliveries of it in 5 s, and the 100 behind it done', async () => {
    const queue = await poisonThenGood('backoff-poison', 100)
    let poison = 0
    let good = 0
    const consumer = new Consumer({
      queueName: queue,
      taskFunction: (message) => {
        if (message.body.toString() === 'poison') {
          poison++
          return MessageStatus.FAIL_RETRY_LATER
        }
        good++
        return MessageStatus.SUCCESS
      },
    })
    consumers.push(consumer)
    await consumer.start()
    await sleep(5000)
    assert.equal(good, 100, 'every message behind the poison message done')
    assert.ok(poison >= 2 && poison <= 40, `${poison} deliveries of the poison message in 5 s`)
    assert.equal(consumer.held, 1, 'the poison message is held for its backoff')
    await consumer.stop()
    assert.equal(await queueCount(queue), 1, 'stop() requeued the held message')
  })

  test('several poison messages at the head (2 at prefetch 1, 10 at prefetch 5): the messages behind them are done, held and unsettled stay within bounds', async () => {
    for (const [poisonCount, prefetch] of [
      [2, 1],
      [10, 5],
    ] as const) {
      const queue = uniqueName('backoff-many-poison')
      queues.push(queue)
      let good = 0
      let maxHeld = 0
      let maxUnsettled = 0
      const consumer: Consumer = new Consumer({
        queueName: queue,
        prefetch,
        taskFunction: (message) => {
          maxUnsettled = Math.max(maxUnsettled, consumer.unsettled)
          if (message.body.toString() === 'poison') {
            queueMicrotask(() => {
              maxHeld = Math.max(maxHeld, consumer.held)
            })
            return MessageStatus.FAIL_RETRY_LATER
          }
          good++
          return MessageStatus.SUCCESS
        },
      })
      consumers.push(consumer)
      // Started first: the poison messages are its first deliveries, failing while others arrive.
      await consumer.start()
      for (let i = 0; i < poisonCount; i++) await publisher.sendMessageToQueue(queue, 'poison')
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => publisher.sendMessageToQueue(queue, `good ${i}`)),
      )
      await waitFor(() => good === 100, 5_000, `the 100 good messages behind ${poisonCount} poison ones`)
      assert.ok(maxHeld <= poisonCount, `held ${maxHeld}`)
      assert.ok(maxUnsettled <= prefetch + Math.max(prefetch, 20), `unsettled ${maxUnsettled}`)
      await consumer.stop()
      assert.equal(await queueCount(queue), poisonCount, 'stop() requeued the held ones')
    }
  })

  test('a consumer the broker cancelled starts again with one subscription, even when its first messages fail at once', async () => {
    const queue = uniqueName('backoff-reopen')
    queues.push(queue)
    const consumer = new Consumer({ queueName: queue, taskFunction: () => MessageStatus.FAIL_RETRY_LATER })
    consumers.push(consumer)
    consumer.on('error', () => {}) // CONSUMER_CANCELLED, expected
    await consumer.start()
    await deleteQueue(queue) // the broker cancels the consumer; it declares the queue again
    await declareQueue(queue)
    await publishRaw(queue, ['poison', 'poison', 'poison'])
    await waitFor(() => consumer.held >= 1, 5_000, 'a held message after the restart')
    await sleep(1000)
    assert.equal(await consumerCount(queue), 1, 'one subscription on the queue')
    await consumer.stop()
    assert.equal(await consumerCount(queue), 0, 'stop() cancelled it')
  })

  test('an exclusive consumer of a temporary queue is never subscribed again: its queue (auto-delete) and messages stay', async () => {
    const consumer: Consumer = new Consumer({
      queueName: '',
      exclusive: true,
      taskFunction: (message) =>
        message.body.toString() === 'poison' ? MessageStatus.FAIL_RETRY_LATER : MessageStatus.SUCCESS,
    })
    consumers.push(consumer)
    const errors: string[] = []
    consumer.on('error', (err) => errors.push(err.code))
    await consumer.start()
    const queue = consumer.queueName
    await publisher.sendMessageToQueue(queue, 'poison')
    for (let i = 0; i < 5; i++) await publisher.sendMessageToQueue(queue, `good ${i}`)
    await sleep(1000)
    assert.equal(consumer.queueName, queue, 'the same queue: it was not deleted and declared anew')
    // Still routable (a send is mandatory): the queue, and the messages in it, exist.
    await publisher.sendMessageToQueue(queue, 'still there')
    assert.deepEqual(errors, [], 'no channel closed under the consumer')
    await consumer.stop()
  })

  test('requeueBackoff: false requeues at once, as AMQP does', async () => {
    const queue = await poisonThenGood('backoff-off', 0)
    let poison = 0
    const consumer = new Consumer({
      queueName: queue,
      requeueBackoff: false,
      taskFunction: () => {
        poison++
        return MessageStatus.FAIL_RETRY_LATER
      },
    })
    consumers.push(consumer)
    await consumer.start()
    await sleep(1000)
    await consumer.stop()
    assert.ok(poison > 100, `${poison} deliveries in 1 s`)
  })
})
