// A 'sync' publisher keeps at most one message unconfirmed, even when 100 sends are started at
// once without awaiting, and the messages reach the queue in the order they were sent.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Publisher } from 'lapinmq'
import { closeAdmin, declareQueue, deleteQueue, drainQueue, uniqueName } from '../helpers/broker.ts'

after(closeAdmin)

test('100 unawaited sends: never more than one unconfirmed, delivered in send order', async () => {
  const queue = uniqueName('sync-window')
  await declareQueue(queue)
  const publisher = new Publisher({ kind: 'sync' })
  const samples: number[] = []
  const sample = (): void => {
    samples.push(publisher.unconfirmed)
  }
  const sampler = setInterval(sample, 0)
  try {
    await publisher.start()
    const bodies = Array.from({ length: 100 }, (_, i) => `message-${String(i).padStart(3, '0')}`)
    const acked: string[] = []
    const sends = bodies.map((body) => {
      const sent = publisher.sendMessageToQueue(queue, body, {
        callbacks: {
          ackCallback: () => {
            acked.push(body)
            sample()
          },
        },
      })
      sample()
      sent.then(sample, sample)
      return sent
    })
    // Right after the calls, one is published and 99 wait their turn.
    assert.equal(publisher.unconfirmed, 1)
    assert.equal(publisher.waiting, 99)
    await Promise.all(sends)
    clearInterval(sampler)

    assert.equal(Math.max(...samples), 1, 'a sync publisher had more than one message unconfirmed')
    assert.ok(samples.length >= 300, `expected many samples, got ${samples.length}`)
    assert.deepEqual(acked, bodies, 'confirms came in another order than the sends')
    assert.equal(publisher.unconfirmed, 0)
    assert.equal(publisher.waiting, 0)

    const delivered = (await drainQueue(queue)).map((m) => m.content.toString())
    assert.deepEqual(delivered, bodies, 'messages arrived in another order than they were sent')
  } finally {
    clearInterval(sampler)
    await publisher.stop()
    await deleteQueue(queue)
  }
})
