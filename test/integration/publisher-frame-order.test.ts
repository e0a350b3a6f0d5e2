// Plain publishes go straight to the socket while their channel has nothing queued in amqplib,
// and through amqplib's buffer otherwise (a full socket, or messages amqplib encodes itself:
// headers, large bodies). A burst that mixes all of these must still reach the queue in send order.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Publisher } from 'lapinmq'
import { closeAdmin, declareQueue, deleteQueue, drainQueue, uniqueName } from '../helpers/broker.ts'

after(closeAdmin)

test('a burst mixing direct and amqplib-encoded publishes arrives in send order', async () => {
  const queue = uniqueName('frame-order')
  await declareQueue(queue)
  const publisher = new Publisher({ kind: 'async', maxInFlight: 10_000 })
  try {
    await publisher.start()
    const count = 10_000
    const names = Array.from({ length: count }, (_, i) => `m-${String(i).padStart(5, '0')}`)
    // One tick: ~1.4 MB, far past the socket's high-water mark, so later sends take amqplib's
    // buffer; every 97th has a header and every 101st a 4 KiB body, both encoded by amqplib.
    const sends = names.map((name, i) => {
      if (i % 97 === 0) return publisher.sendMessageToQueue(queue, name, { headers: { i } })
      if (i % 101 === 0) return publisher.sendMessageToQueue(queue, `${name}:${'x'.repeat(4096)}`)
      return publisher.sendMessageToQueue(queue, name)
    })
    await Promise.all(sends)
    const delivered = (await drainQueue(queue)).map((m) => m.content.toString().split(':')[0])
    assert.equal(delivered.length, count)
    assert.deepEqual(delivered, names, 'messages arrived in another order than they were sent')
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
})
