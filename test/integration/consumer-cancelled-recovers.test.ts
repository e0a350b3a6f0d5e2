// A consumer whose queue is deleted under it is cancelled by the broker. It must not sit silently
// dead: it reports CONSUMER_CANCELLED and starts over, declaring its queue again, and consumes what
// is published to it afterwards.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { after, test } from 'node:test'
import { Consumer, type LapinError, MessageStatus, Publisher } from 'lapinmq'
import { closeAdmin, deleteQueue, uniqueName, waitFor } from '../helpers/broker.ts'

after(closeAdmin)

test('queue deleted under a consumer: CONSUMER_CANCELLED, then the queue is declared again and consumed', async () => {
  const queue = uniqueName('cancelled')
  const received: string[] = []
  const consumer = new Consumer({
    queueName: queue,
    taskFunction: (m) => {
      received.push(m.body.toString())
      return MessageStatus.SUCCESS
    },
  })
  const errors: LapinError[] = []
  consumer.on('error', (e) => errors.push(e))
  const publisher = new Publisher({ kind: 'sync' })
  try {
    await consumer.start()
    await publisher.sendMessageToQueue(queue, 'before')
    await waitFor(() => received.length === 1, 5000, 'the first message')
    const cancelled = once(consumer, 'error')
    await deleteQueue(queue)
    await cancelled
    assert.equal(errors[0]?.code, 'CONSUMER_CANCELLED')
    // The restart declares the queue again: a send then routes (no UNROUTABLE) and is consumed.
    await waitFor(
      async () => {
        try {
          await publisher.sendMessageToQueue(queue, 'after')
          return true
        } catch (err) {
          if ((err as LapinError).code !== 'UNROUTABLE') throw err
          return false
        }
      },
      10_000,
      'the queue to be declared again',
    )
    await waitFor(() => received.includes('after'), 5000, 'the message sent after the restart')
    assert.deepEqual(received, ['before', 'after'])
    assert.equal(errors.length, 1, 'one cancel, one error')
  } finally {
    await consumer.stop()
    await publisher.stop()
    await deleteQueue(queue)
  }
})
