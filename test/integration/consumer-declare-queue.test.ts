// `declareQueue: false` consumes a queue as operators declared it (any arguments, any type) and
// never creates one: a typo'd name fails start() with NOT_FOUND and leaves nothing behind.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Connection, Consumer, LapinError, type Message, MessageStatus } from 'lapinmq'
import { declareQueue, publishRaw, queueCount, uniqueName, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues } = cleanedUpAfterFile()

test('declareQueue: false consumes a queue declared with arguments the consumer does not repeat', async () => {
  const name = uniqueName('declare-false')
  queues.push(name)
  await declareQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-max-length': 1000 } })
  await publishRaw(name, ['a', 'b', 'c'])
  const seen: string[] = []
  const consumer = new Consumer({
    queueName: name,
    declareQueue: false,
    taskFunction: (message: Message) => {
      seen.push(message.body.toString())
      return MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  await consumer.start()
  await waitFor(() => seen.length === 3)
  assert.deepEqual(seen.sort(), ['a', 'b', 'c'])
  await consumer.stop()
  assert.equal(await queueCount(name), 0)
})

test('declareQueue: false on a missing queue rejects NOT_FOUND at once and creates nothing', async () => {
  const name = uniqueName('declare-false-missing')
  queues.push(name)
  const consumer = new Consumer({
    queueName: name,
    declareQueue: false,
    taskFunction: () => MessageStatus.SUCCESS,
  })
  consumers.push(consumer)
  const started = Date.now()
  await assert.rejects(consumer.start(), (err: unknown) => {
    assert.ok(err instanceof LapinError)
    assert.equal(err.code, 'NOT_FOUND')
    assert.match(err.message, new RegExp(name.replaceAll('.', '\\.')))
    return true
  })
  assert.ok(Date.now() - started < 1000)
  await assert.rejects(queueCount(name), /404/)
})

test('connection.checkQueue counts what a queue holds and never creates one', async () => {
  const name = uniqueName('check-queue')
  queues.push(name)
  await declareQueue(name)
  await publishRaw(name, ['x', 'y'])
  const connection = new Connection()
  try {
    assert.deepEqual(await connection.checkQueue(name), { queue: name, messageCount: 2, consumerCount: 0 })
    await assert.rejects(connection.checkQueue(`${name}.typo`), { code: 'NOT_FOUND' })
    await assert.rejects(queueCount(`${name}.typo`), /404/)
  } finally {
    await connection.close()
  }
})
