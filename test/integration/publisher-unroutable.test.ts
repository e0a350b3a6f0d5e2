// A message no queue is bound for comes back (basic.return): its send rejects with UnroutableError
// and calls nackCallback once, never ackCallback, and the publisher goes on working. Interleaved
// with routable messages, each message gets its own outcome. With `mandatory: false` the broker
// drops it instead, and the send resolves.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type LapinError, Publisher, UnroutableError } from 'lapinmq'
import {
  closeAdmin,
  declareExchange,
  declareQueue,
  deleteExchange,
  deleteQueue,
  drainQueue,
  uniqueName,
} from '../helpers/broker.ts'

after(closeAdmin)

for (const kind of ['sync', 'async'] as const) {
  test(`${kind}: a message to an exchange with no binding rejects UNROUTABLE; the next send succeeds`, async () => {
    const exchange = uniqueName(`unbound-${kind}`)
    const queue = uniqueName(`after-return-${kind}`)
    await declareExchange(exchange, 'direct')
    await declareQueue(queue)
    const publisher = new Publisher({ kind })
    try {
      await publisher.start()
      const nacks: LapinError[] = []
      let acks = 0
      const sent = publisher.sendMessage(exchange, 'no.such.key', 'lost?', {
        callbacks: { ackCallback: () => acks++, nackCallback: (err) => nacks.push(err) },
      })
      const err = await sent.then(
        () => assert.fail('an unroutable message was confirmed'),
        (e: unknown) => e,
      )
      assert.ok(err instanceof UnroutableError, `expected UnroutableError, got ${String(err)}`)
      assert.equal(err.code, 'UNROUTABLE')
      assert.equal(err.replyCode, 312)
      assert.equal(err.exchange, exchange)
      assert.equal(err.routingKey, 'no.such.key')

      await sleep(200) // a late second outcome would show up here
      assert.equal(nacks.length, 1, 'nackCallback must be called exactly once')
      assert.equal(nacks[0], err, 'nackCallback gets the same error as the promise')
      assert.equal(acks, 0, 'ackCallback must not be called for a returned message')

      let acked = 0
      await publisher.sendMessageToQueue(queue, 'after', { callbacks: { ackCallback: () => acked++ } })
      assert.equal(acked, 1)
      const delivered = await drainQueue(queue)
      assert.deepEqual(
        delivered.map((m) => m.content.toString()),
        ['after'],
      )
    } finally {
      await publisher.stop()
      await deleteQueue(queue)
      await deleteExchange(exchange)
    }
  })
}

test('async: 200 interleaved routable and unroutable messages each get their own outcome', async () => {
  const exchange = uniqueName('unbound-mixed')
  const queue = uniqueName('mixed')
  const missingQueue = uniqueName('never-declared')
  await declareExchange(exchange, 'direct')
  await declareQueue(queue)
  const publisher = new Publisher({ kind: 'async', maxInFlight: 64 })
  try {
    await publisher.start()
    // Three destinations, in turn: a real queue, an exchange with no binding, and the default
    // exchange with a queue name that does not exist (same exchange and body as the routable ones,
    // only the routing key differs).
    const destinations = [
      { exchange: '', routingKey: queue, routable: true },
      { exchange, routingKey: 'nobody', routable: false },
      { exchange: '', routingKey: missingQueue, routable: false },
    ]
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const to = destinations[i % 3] as (typeof destinations)[number]
        let callbacks = 0
        const body = to.routable ? `routable-${i}` : 'same body for every unroutable message'
        return publisher
          .sendMessage(to.exchange, to.routingKey, body, {
            callbacks: { ackCallback: () => callbacks++, nackCallback: () => callbacks++ },
          })
          .then(
            () => ({ i, to, error: undefined as unknown, callbacks: () => callbacks }),
            (error: unknown) => ({ i, to, error, callbacks: () => callbacks }),
          )
      }),
    )
    await sleep(200)

    let confirmed = 0
    let returned = 0
    for (const { i, to, error, callbacks } of outcomes) {
      assert.equal(callbacks(), 1, `message ${i}: callbacks called ${callbacks()} times`)
      if (to.routable) {
        assert.equal(error, undefined, `routable message ${i} failed: ${String(error)}`)
        confirmed++
      } else {
        assert.ok(error instanceof UnroutableError, `unroutable message ${i} got ${String(error)}`)
        assert.equal(error.code, 'UNROUTABLE')
        assert.equal(error.exchange, to.exchange)
        assert.equal(error.routingKey, to.routingKey, `message ${i} got another message's return`)
        returned++
      }
    }
    assert.equal(confirmed, 67)
    assert.equal(returned, 133)
    const delivered = (await drainQueue(queue)).map((m) => m.content.toString())
    const expected = outcomes.filter((o) => o.to.routable).map((o) => `routable-${o.i}`)
    assert.deepEqual(delivered, expected)
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
    await deleteExchange(exchange)
  }
})

for (const kind of ['sync', 'async'] as const) {
  test(`${kind}: mandatory: false: an unroutable send resolves (the broker drops it), ackCallback once`, async () => {
    const exchange = uniqueName(`unbound-optional-${kind}`)
    await declareExchange(exchange, 'direct')
    const publisher = new Publisher({ kind })
    try {
      await publisher.start()
      const outcomes: string[] = []
      await publisher.sendMessage(exchange, 'no.such.key', 'dropped', {
        mandatory: false,
        callbacks: { ackCallback: () => outcomes.push('ack'), nackCallback: (e) => outcomes.push(e.code) },
      })
      // The default stays mandatory: the same send without the option is returned.
      await assert.rejects(publisher.sendMessage(exchange, 'no.such.key', 'returned'), { code: 'UNROUTABLE' })
      await sleep(200)
      assert.deepEqual(outcomes, ['ack'])
    } finally {
      await publisher.stop()
      await deleteExchange(exchange)
    }
  })
}
