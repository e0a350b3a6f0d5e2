// Promises about settling that once broke: Message's settles work when passed around unbound (the
// callback form of the original library), a task result of any shape releases its slot, and
// `stop({ timeout: Infinity })` waits for the running task instead of returning at once.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type Message, MessageStatus, Publisher } from 'lapinmq'
import { declareQueue, drainQueue, publishRaw, queueCount, uniqueName, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues } = cleanedUpAfterFile()

async function freshQueue(prefix: string, bodies: string[] = []): Promise<string> {
  const name = uniqueName(prefix)
  queues.push(name)
  await declareQueue(name)
  if (bodies.length > 0) await publishRaw(name, bodies)
  return name
}

test('unbound message.ack / message.rejectRetry as publish callbacks: a 300-message pipeline moves everything', async () => {
  const bodies = Array.from({ length: 300 }, (_, i) => `m${i}`)
  const source = await freshQueue('unbound-source', bodies)
  const sink = await freshQueue('unbound-sink')
  const publisher = new Publisher({ kind: 'async' })
  await publisher.start()
  const consumer = new Consumer({
    queueName: source,
    concurrency: 10,
    taskFunction: (message: Message) => {
      publisher
        .sendMessageToQueue(sink, message.body, {
          callbacks: { ackCallback: message.ack, nackCallback: message.rejectRetry },
        })
        .catch(() => undefined)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  consumers.push(consumer)
  try {
    await consumer.start()
    await waitFor(async () => (await queueCount(sink)) === 300, 20_000, 'the sink to hold 300')
    await consumer.stop()
    assert.equal(await queueCount(source), 0)
    assert.deepEqual((await drainQueue(sink)).map((m) => m.content.toString()).sort(), [...bodies].sort())
  } finally {
    await publisher.stop()
  }
})

test('an unbound reject settles its own message', async () => {
  const queue = await freshQueue('unbound-reject', ['x'])
  let delivered = 0
  const consumer = new Consumer({
    queueName: queue,
    taskFunction: (message: Message) => {
      delivered++
      const { reject } = message
      setImmediate(reject)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  consumers.push(consumer)
  await consumer.start()
  // Delivered first: before the delivery, nothing is unsettled either.
  await waitFor(() => delivered === 1 && consumer.unsettled === 0 && consumer.running === 0)
  await consumer.stop()
  assert.equal(await queueCount(queue), 0)
})

test('a task result of any shape counts as FAIL_RETRY_LATER and releases its slot', async () => {
  const throwingThen = {}
  Object.defineProperty(throwingThen, 'then', {
    get() {
      throw new Error('then getter')
    },
  })
  // A thenable whose `then` is no function is no promise either: the property is made, not written.
  const notThenable = Object.defineProperty({}, 'then', { value: 1, enumerable: true })
  const odd: unknown[] = [Object.create(null), throwingThen, Symbol('s'), notThenable, () => 1, 42n]
  const queue = await freshQueue('odd-results', odd.map((_, i) => String(i)).concat(['ok']))
  const seen = new Map<string, number>()
  const consumer = new Consumer({
    queueName: queue,
    concurrency: 1,
    taskFunction: (message: Message) => {
      const body = message.body.toString()
      const count = (seen.get(body) ?? 0) + 1
      seen.set(body, count)
      // Each odd result once, then success: the single slot must come back every time.
      if (body === 'ok' || count > 1) return MessageStatus.SUCCESS
      return odd[Number(body)] as MessageStatus
    },
  })
  consumers.push(consumer)
  await consumer.start()
  // Each comes back after its requeue backoff (held, then requeued: unsettled is 0 in between too).
  const retried = () => odd.every((_, i) => (seen.get(String(i)) ?? 0) >= 2)
  await waitFor(() => retried() && seen.has('ok') && consumer.unsettled === 0, 10_000, 'every message done')
  for (let i = 0; i < odd.length; i++) assert.equal(seen.get(String(i)), 2, `result #${i} was retried once`)
  const started = Date.now()
  await consumer.stop({ timeout: 5000 })
  assert.ok(Date.now() - started < 2000, 'stop did not wait for a leaked slot')
  assert.equal(await queueCount(queue), 0)
})

test('stop({ timeout: Infinity }) waits for a 1.5 s task and its ack', async () => {
  const queue = await freshQueue('stop-infinity', ['slow'])
  let runs = 0
  let finished = 0
  const consumer = new Consumer({
    queueName: queue,
    taskFunction: async () => {
      runs++
      await sleep(1500)
      finished = Date.now()
      return MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  await consumer.start()
  await waitFor(() => runs === 1)
  await consumer.stop({ timeout: Number.POSITIVE_INFINITY })
  assert.ok(finished > 0 && finished <= Date.now(), 'stop resolved after the task')
  assert.equal(runs, 1)
  assert.equal(await queueCount(queue), 0, 'acked, not requeued')
})

test('stop timeouts: NaN and negatives are a RangeError; Infinity on a publisher waits for its confirms', async () => {
  const consumer = new Consumer({ queueName: 'never-started', taskFunction: () => MessageStatus.SUCCESS })
  assert.throws(() => consumer.stop({ timeout: Number.NaN }), RangeError)
  assert.throws(() => consumer.stop({ timeout: -1 }), RangeError)
  await consumer.stop({ timeout: Number.POSITIVE_INFINITY })
  const queue = await freshQueue('publisher-stop-infinity')
  const publisher = new Publisher({ kind: 'async' })
  assert.throws(() => publisher.stop({ timeout: Number.NaN }), RangeError)
  assert.throws(() => publisher.stop({ timeout: -5 }), RangeError)
  await publisher.start()
  const sends = Array.from({ length: 2000 }, (_, i) => publisher.sendMessageToQueue(queue, `p${i}`))
  await publisher.stop({ timeout: Number.POSITIVE_INFINITY })
  const outcomes = await Promise.allSettled(sends)
  assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 2000)
  assert.equal(await queueCount(queue), 2000)
})
