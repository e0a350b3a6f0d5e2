// `queueName: ''` declares a temporary queue: server-named, exclusive to the consumer's connection,
// bound to an exchange with the given keys, and gone once the consumer stops. After a reconnect it
// comes back under a new name, bound again.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Consumer, type LapinError, MessageStatus, Publisher } from 'lapinmq'
import {
  closeAdmin,
  declareExchange,
  deleteExchange,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'

const exchanges: string[] = []
let consumer: Consumer | undefined
let publisher: Publisher | undefined

after(async () => {
  await consumer?.stop({ timeout: 1000 })
  await publisher?.stop({ timeout: 1000 })
  for (const exchange of exchanges) await deleteExchange(exchange)
  await closeAdmin()
})

/** Why a passive declare of `queue` from another connection fails ('' if it succeeds). */
async function checkFails(queue: string): Promise<string> {
  return queueCount(queue).then(
    () => '',
    (err: Error) => err.message,
  )
}

describe('temporary queue', () => {
  test("queueName '' gets an exclusive server-named queue bound with the binding keys", async () => {
    const exchange = uniqueName('tmp-topic')
    exchanges.push(exchange)
    await declareExchange(exchange, 'topic')
    const received: { body: string; routingKey: string; exchange: string }[] = []
    consumer = new Consumer({
      queueName: '',
      exchange,
      bindingKeys: ['a.*', 'b.#'],
      taskFunction: (message) => {
        received.push({
          body: message.body.toString(),
          routingKey: message.routingKey,
          exchange: message.exchange,
        })
        return MessageStatus.SUCCESS
      },
    })
    assert.equal(consumer.queueName, '')
    await consumer.start()
    const queue = consumer.queueName
    assert.match(queue, /^amq\.gen-/)
    assert.match(await checkFails(queue), /RESOURCE_LOCKED/, 'exclusive to the consumer connection')

    publisher = new Publisher({ kind: 'sync' })
    await publisher.start()
    const outcome = (p: Promise<void>) =>
      p.then(
        () => 'confirmed',
        (err: LapinError) => err.code,
      )
    const outcomes = {
      'a.x': await outcome(publisher.sendMessage(exchange, 'a.x', 'to a.x')),
      'b.y.z': await outcome(publisher.sendMessage(exchange, 'b.y.z', 'to b.y.z')),
      b: await outcome(publisher.sendMessage(exchange, 'b', 'to b')),
      'c.q': await outcome(publisher.sendMessage(exchange, 'c.q', 'to c.q')),
      'a.x.y': await outcome(publisher.sendMessage(exchange, 'a.x.y', 'to a.x.y')),
    }
    assert.deepEqual(outcomes, {
      'a.x': 'confirmed',
      'b.y.z': 'confirmed',
      b: 'confirmed',
      'c.q': 'UNROUTABLE',
      'a.x.y': 'UNROUTABLE',
    })
    await waitFor(() => received.length === 3, 5000, 'three deliveries')
    await sleep(200)
    assert.deepEqual(received, [
      { body: 'to a.x', routingKey: 'a.x', exchange },
      { body: 'to b.y.z', routingKey: 'b.y.z', exchange },
      { body: 'to b', routingKey: 'b', exchange },
    ])

    await consumer.stop()
    await waitFor(async () => /NOT_FOUND/.test(await checkFails(queue)), 5000, 'the queue to be deleted')
    assert.equal(
      await outcome(publisher.sendMessage(exchange, 'a.x', 'after stop')),
      'UNROUTABLE',
      'the binding went with the queue',
    )
  })

  test('after a reconnect the temporary queue comes back under a new name, bound again; the old one is gone', async () => {
    const exchange = uniqueName('tmp-direct')
    exchanges.push(exchange)
    await declareExchange(exchange, 'direct')
    const proxy = await TcpProxy.start()
    const connection = new Connection({
      url: proxy.url(),
      name: 'tmp-queue-reconnect',
      recovery: { initialDelay: 10, maxDelay: 50 },
    })
    const received: string[] = []
    const tmp = new Consumer({
      queueName: '',
      exchange,
      bindingKeys: ['k'],
      connection,
      taskFunction: (message) => {
        received.push(message.body.toString())
        return MessageStatus.SUCCESS
      },
    })
    const errors: LapinError[] = []
    tmp.on('error', (e) => errors.push(e))
    const sender = new Publisher({ kind: 'sync' })
    try {
      await tmp.start()
      await sender.start()
      const before = tmp.queueName
      await sender.sendMessage(exchange, 'k', 'before the cut')
      await waitFor(() => received.length === 1, 5000, 'the first delivery')

      proxy.cut()
      await waitFor(() => tmp.queueName !== before && connection.state === 'open', 10_000, 'a new queue')
      const after = tmp.queueName
      assert.match(after, /^amq\.gen-/)
      // The broker deleted the exclusive queue with the connection that held it.
      await waitFor(
        async () => /NOT_FOUND/.test(await checkFails(before)),
        5000,
        'the old queue to be deleted',
      )
      assert.match(
        await checkFails(after),
        /RESOURCE_LOCKED/,
        'the new one is exclusive to the new connection',
      )
      // Bound again: a send with the key is routed (not returned) and delivered.
      await sender.sendMessage(exchange, 'k', 'after the cut')
      await waitFor(() => received.length === 2, 5000, 'the delivery through the new binding')
      assert.deepEqual(received, ['before the cut', 'after the cut'])
      assert.equal(proxy.accepted, 2, 'one reconnect')
    } finally {
      await tmp.stop({ timeout: 1000 })
      await sender.stop()
      await connection.close()
      await proxy.close()
    }
  })
})
