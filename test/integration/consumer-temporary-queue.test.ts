// `queueName: ''` declares a temporary queue: server-named, exclusive to the consumer's connection,
// bound to an exchange with the given keys, and gone once the consumer stops.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type LapinError, MessageStatus, Publisher } from 'lapinmq'
import {
  closeAdmin,
  declareExchange,
  deleteExchange,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'

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
})
