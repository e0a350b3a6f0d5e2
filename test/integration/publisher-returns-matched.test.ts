// A basic.return names no delivery tag: the publisher must find the returned send by everything the
// broker gives back. Two sends that differ only in their headers (a headers exchange routes one
// and returns the other) must each get their own outcome, and names the broker would know under
// another spelling (a lone surrogate goes out as U+FFFD) are refused at the call.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import * as amqplib from 'amqplib'
import { Publisher } from 'lapinmq'
import {
  brokerUrl,
  closeAdmin,
  declareQueue,
  deleteExchange,
  deleteQueue,
  drainQueue,
  uniqueName,
} from '../helpers/broker.ts'

after(closeAdmin)

async function headersExchangeTo(queue: string): Promise<string> {
  const exchange = uniqueName('headers')
  const conn = await amqplib.connect(brokerUrl)
  try {
    const ch = await conn.createChannel()
    await ch.assertExchange(exchange, 'headers', { durable: false })
    await ch.bindQueue(queue, exchange, '', { 'x-match': 'all', color: 'red' })
  } finally {
    await conn.close()
  }
  return exchange
}

test('100 interleaved pairs to a headers exchange, same body and key: the 100 blue are returned, the 100 red confirmed', async () => {
  const queue = uniqueName('headers-red')
  await declareQueue(queue)
  const exchange = await headersExchangeTo(queue)
  const publisher = new Publisher({ kind: 'async', maxInFlight: 1000 })
  try {
    await publisher.start()
    const red: Promise<void>[] = []
    const blue: Promise<void>[] = []
    for (let i = 0; i < 100; i++) {
      red.push(publisher.sendMessage(exchange, 'k', 'same body', { headers: { color: 'red' } }))
      blue.push(publisher.sendMessage(exchange, 'k', 'same body', { headers: { color: 'blue' } }))
    }
    const redOutcomes = await Promise.allSettled(red)
    const blueOutcomes = await Promise.allSettled(blue)
    const codes = (outcomes: PromiseSettledResult<void>[]) =>
      outcomes.map((o) => (o.status === 'fulfilled' ? 'confirmed' : (o.reason as { code: string }).code))
    assert.deepEqual(codes(redOutcomes), Array(100).fill('confirmed'))
    assert.deepEqual(codes(blueOutcomes), Array(100).fill('UNROUTABLE'))
    const held = await drainQueue(queue)
    assert.equal(held.length, 100)
    assert.ok(held.every((m) => m.properties.headers?.color === 'red'))
  } finally {
    await publisher.stop()
    await deleteExchange(exchange)
    await deleteQueue(queue)
  }
})

test('a plain send (no headers, the fast path) and a routed send with headers, same body and key, get their own outcome', async () => {
  const queue = uniqueName('headers-number')
  await declareQueue(queue)
  const exchange = await headersExchangeTo(queue)
  const publisher = new Publisher({ kind: 'async' })
  try {
    await publisher.start()
    const sends = []
    for (let i = 0; i < 50; i++) {
      sends.push(publisher.sendMessage(exchange, 'k', 'b', { headers: { color: 'red', n: 1.5 } }))
      sends.push(publisher.sendMessage(exchange, 'k', 'b'))
    }
    const outcomes = await Promise.allSettled(sends)
    const returned = outcomes.map((o) => o.status === 'rejected')
    assert.deepEqual(
      returned,
      sends.map((_, i) => i % 2 === 1),
    )
    assert.equal((await drainQueue(queue)).length, 50)
  } finally {
    await publisher.stop()
    await deleteExchange(exchange)
    await deleteQueue(queue)
  }
})

test('an exchange or routing key with a lone surrogate is refused at the call', async () => {
  const publisher = new Publisher({ kind: 'async' })
  try {
    assert.throws(
      () => publisher.sendMessage('', 'orders-😀'.slice(0, -1), 'x'),
      /routingKey must be well-formed/,
    )
    assert.throws(() => publisher.sendMessage('\udc00', 'k', 'x'), /exchange must be well-formed/)
    assert.throws(() => publisher.sendMessageToQueue('q\ud800', 'x'), TypeError)
    // A whole emoji is fine.
    await assert.rejects(publisher.sendMessageToQueue(uniqueName('no-queue-😀'), 'x'), { code: 'UNROUTABLE' })
  } finally {
    await publisher.stop()
  }
})
