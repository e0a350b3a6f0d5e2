// A quorum queue declared by an operator (here with amqplib directly) with arguments the consumer
// does not repeat, x-delivery-limit and x-max-length: `declareQueue: false` consumes it as it is,
// with no 406; without that flag the consumer's own declare differs, and start() rejects
// PRECONDITION_FAILED with the broker's text naming the argument.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Consumer, LapinError, type Message, MessageStatus } from 'lapinmq'
import { operatorDeclaresQuorum, publishRaw, queueCount, uniqueName, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

const { consumers, queues } = cleanedUpAfterFile()

test('declareQueue: false consumes an operator-declared quorum queue (x-delivery-limit, x-max-length) with no 406', async () => {
  const queue = uniqueName('predeclared-quorum')
  queues.push(queue)
  await operatorDeclaresQuorum(queue)
  await publishRaw(queue, ['a', 'b', 'c', 'd'])
  const seen: string[] = []
  const errors: LapinError[] = []
  const consumer = new Consumer({
    queueName: queue,
    declareQueue: false,
    queueType: 'quorum',
    concurrency: 2,
    taskFunction: (message: Message) => {
      seen.push(message.body.toString())
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('error', (e) => errors.push(e))
  consumers.push(consumer)
  await consumer.start()
  await waitFor(() => seen.length === 4, 10_000, 'four deliveries')
  await consumer.stop()
  assert.deepEqual(seen.sort(), ['a', 'b', 'c', 'd'])
  assert.deepEqual(errors, [], 'no channel error (a 406 would close the channel and be reported)')
  assert.equal(consumer.staleSettles, 0)
  assert.equal(await queueCount(queue), 0, 'every message acked')
})

test('without declareQueue: false, start() rejects PRECONDITION_FAILED naming the argument the declare lacks', async () => {
  const queue = uniqueName('predeclared-quorum-redeclared')
  queues.push(queue)
  await operatorDeclaresQuorum(queue)
  const consumer = new Consumer({
    queueName: queue,
    queueType: 'quorum',
    taskFunction: () => MessageStatus.SUCCESS,
  })
  consumers.push(consumer)
  await assert.rejects(consumer.start(), (err: unknown) => {
    assert.ok(err instanceof LapinError)
    assert.equal(err.code, 'PRECONDITION_FAILED')
    assert.equal(err.replyCode, 406)
    assert.match(err.message, /inequivalent arg '(x-delivery-limit|x-max-length)'/)
    assert.ok(err.message.includes(`'${queue}'`), err.message)
    return true
  })
  // The queue is untouched: still the operator's quorum queue.
  assert.equal(await queueCount(queue), 0)
})
