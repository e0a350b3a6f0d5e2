// A send to an exchange that does not exist rejects with a typed NOT_FOUND error and nothing else is
// disturbed: the publisher checks each exchange once per connection before its first send to it,
// so the broker never closes the publishing channel over a typo and no in-doubt message on it is
// republished (duplicated). An exchange deleted after its check still fails its send alone.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { LapinError, Publisher } from 'lapinmq'
import {
  bindQueue,
  closeAdmin,
  declareExchange,
  declareQueue,
  deleteExchange,
  deleteQueue,
  drainQueue,
  queueCount,
  uniqueName,
} from '../helpers/broker.ts'

after(closeAdmin)

for (const kind of ['sync', 'async'] as const) {
  test(`${kind}: a send to a missing exchange rejects NOT_FOUND (404); the publisher keeps working`, async () => {
    const missing = uniqueName(`missing-exchange-${kind}`)
    const queue = uniqueName(`after-404-${kind}`)
    await declareQueue(queue)
    const publisher = new Publisher({ kind })
    try {
      await publisher.start()
      const nacks: LapinError[] = []
      let acks = 0
      const err = await publisher
        .sendMessage(missing, 'key', 'to nowhere', {
          callbacks: { ackCallback: () => acks++, nackCallback: (e) => nacks.push(e) },
        })
        .then(
          () => assert.fail('a message to a missing exchange was confirmed'),
          (e: unknown) => e,
        )
      assert.ok(err instanceof LapinError, `expected a LapinError, got ${String(err)}`)
      assert.equal(err.code, 'NOT_FOUND')
      assert.equal(err.replyCode, 404)
      assert.match(err.message, new RegExp(`no exchange '${missing.replaceAll('.', '\\.')}'`))

      // The next sends are confirmed.
      for (let i = 0; i < 3; i++) await publisher.sendMessageToQueue(queue, `after-${i}`)
      await sleep(100)
      assert.equal(nacks.length, 1, 'nackCallback must be called exactly once')
      assert.equal(nacks[0], err)
      assert.equal(acks, 0)
      const delivered = (await drainQueue(queue)).map((m) => m.content.toString())
      assert.deepEqual(delivered, ['after-0', 'after-1', 'after-2'])

      // And a second send to it is refused the same way.
      await assert.rejects(publisher.sendMessage(missing, 'key', 'again'), { code: 'NOT_FOUND' })
      await publisher.sendMessageToQueue(queue, 'last')
      assert.deepEqual(
        (await drainQueue(queue)).map((m) => m.content.toString()),
        ['last'],
      )
    } finally {
      await publisher.stop()
      await deleteQueue(queue)
    }
  })
}

for (const republish of [true, false]) {
  test(`async, republish ${republish}: a 404 amid sends in flight settles every send once; later sends succeed`, async () => {
    const missing = uniqueName('missing-exchange-mixed')
    const queue = uniqueName('around-404')
    await declareQueue(queue)
    const publisher = new Publisher({ kind: 'async', republish })
    try {
      await publisher.start()
      const settle = (p: Promise<void>) =>
        p.then(
          () => 'confirmed',
          (e: LapinError) => e.code,
        )
      const before = Array.from({ length: 20 }, (_, i) =>
        settle(publisher.sendMessageToQueue(queue, `b${i}`)),
      )
      const bad = settle(publisher.sendMessage(missing, 'key', 'to nowhere'))
      const afterBad = Array.from({ length: 20 }, (_, i) =>
        settle(publisher.sendMessageToQueue(queue, `a${i}`)),
      )
      assert.equal(await bad, 'NOT_FOUND')
      const outcomes = await Promise.all([...before, ...afterBad])
      // The 404 belongs to the bad send only: the channel stays open, nothing is in doubt.
      assert.deepEqual(outcomes, Array(40).fill('confirmed'))
      const bodies = outcomes.map((_, i) => (i < 20 ? `b${i}` : `a${i - 20}`))
      const delivered = (await drainQueue(queue)).map((m) => m.content.toString())
      assert.deepEqual(delivered, bodies, 'each send delivered once, in order')
      await publisher.sendMessageToQueue(queue, 'later')
      assert.deepEqual(
        (await drainQueue(queue)).map((m) => m.content.toString()),
        ['later'],
      )
    } finally {
      await publisher.stop()
      await deleteQueue(queue)
    }
  })
}

test('2,000 async sends through an exchange with 5 sends to a missing one interleaved: 5 NOT_FOUND, 2,000 confirmed, 2,000 in the queue', async () => {
  const exchange = uniqueName('good-exchange')
  const missing = uniqueName('typo-exchange')
  const queue = uniqueName('typo-among-good')
  await declareQueue(queue)
  await declareExchange(exchange, 'direct')
  await bindQueue(queue, exchange, 'k')
  const publisher = new Publisher({ kind: 'async', maxInFlight: 500 })
  try {
    await publisher.start()
    const good: Promise<void>[] = []
    const bad: Promise<void>[] = []
    for (let i = 0; i < 2000; i++) {
      good.push(publisher.sendMessage(exchange, 'k', `m${i}`))
      if (i % 400 === 200) bad.push(publisher.sendMessage(missing, 'k', `typo${i}`))
    }
    const badOutcomes = await Promise.allSettled(bad)
    assert.deepEqual(
      badOutcomes.map((o) => (o.status === 'rejected' ? (o.reason as LapinError).code : 'confirmed')),
      Array(5).fill('NOT_FOUND'),
    )
    const goodOutcomes = await Promise.allSettled(good)
    assert.equal(goodOutcomes.filter((o) => o.status === 'fulfilled').length, 2000)
    assert.equal(await queueCount(queue), 2000)
  } finally {
    await publisher.stop()
    await deleteExchange(exchange)
    await deleteQueue(queue)
  }
})

test('an exchange deleted after its check: that send fails NOT_FOUND, the next one is checked again', async () => {
  const exchange = uniqueName('deleted-later')
  const queue = uniqueName('deleted-later-queue')
  await declareQueue(queue)
  await declareExchange(exchange, 'fanout')
  await bindQueue(queue, exchange, '')
  const publisher = new Publisher({ kind: 'sync' })
  try {
    await publisher.start()
    await publisher.sendMessage(exchange, '', 'one')
    await deleteExchange(exchange)
    await assert.rejects(publisher.sendMessage(exchange, '', 'two'), { code: 'NOT_FOUND' })
    await assert.rejects(publisher.sendMessage(exchange, '', 'three'), { code: 'NOT_FOUND' })
    await declareExchange(exchange, 'fanout')
    await bindQueue(queue, exchange, '')
    await publisher.sendMessage(exchange, '', 'four')
    assert.deepEqual(
      (await drainQueue(queue)).map((m) => m.content.toString()),
      ['one', 'four'],
    )
  } finally {
    await publisher.stop()
    await deleteExchange(exchange)
    await deleteQueue(queue)
  }
})
