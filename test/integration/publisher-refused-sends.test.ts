// A publish the broker refuses closes the publishing channel. The refused send fails at once with
// the broker's reason and is never sent again (republished, it would close every channel it went
// out on until its deadline); the other sends on the channel are republished and confirmed. A
// refusal the close does not name (or names cut short) still cannot loop.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import * as amqplib from 'amqplib'
import { type LapinError, type Logger, Publisher } from 'lapinmq'
import {
  brokerUrl,
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

function countingCloses(): { logger: Logger; closes: () => number } {
  let closes = 0
  const noop = () => {}
  return {
    logger: {
      debug: noop,
      info: noop,
      error: noop,
      warn: (_obj, msg) => {
        if (msg?.includes('channel closed')) closes++
      },
    },
    closes: () => closes,
  }
}

async function bindHeaders(queue: string, exchange: string, args: Record<string, unknown>): Promise<void> {
  const connection = await amqplib.connect(brokerUrl)
  try {
    const channel = await connection.createChannel()
    await channel.bindQueue(queue, exchange, '', args)
  } finally {
    await connection.close()
  }
}

const codeOf = (p: Promise<void>) =>
  p.then(
    () => 'confirmed',
    (e: LapinError) => e.code,
  )

test('sends to an internal exchange amid 1,000 good ones: each fails ACCESS_REFUSED once, the others are confirmed', async () => {
  const internal = uniqueName('internal')
  const queue = uniqueName('beside-internal')
  await declareQueue(queue)
  await declareExchange(internal, 'fanout', true)
  const { logger, closes } = countingCloses()
  const publisher = new Publisher({ kind: 'async', confirmTimeout: 5000, logger })
  try {
    await publisher.start()
    const good: Promise<string>[] = []
    const refused: Promise<string>[] = []
    for (let i = 0; i < 1000; i++) {
      good.push(codeOf(publisher.sendMessageToQueue(queue, `m${i}`)))
      if (i % 250 === 100) refused.push(codeOf(publisher.sendMessage(internal, '', `x${i}`)))
    }
    assert.deepEqual(await Promise.all(refused), Array(4).fill('ACCESS_REFUSED'))
    assert.deepEqual(await Promise.all(good), Array(1000).fill('confirmed'))
    // Refused sends in flight together fail together: never more closes than refused sends.
    assert.ok(closes() >= 1 && closes() <= 4, `${closes()} channel closes`)
    assert.ok((await queueCount(queue)) >= 1000)
  } finally {
    await publisher.stop()
    await deleteExchange(internal)
    await deleteQueue(queue)
  }
})

test("a user id that is not the login's fails PRECONDITION_FAILED at once, sent once", async () => {
  const queue = uniqueName('user-id')
  await declareQueue(queue)
  const { logger, closes } = countingCloses()
  const publisher = new Publisher({ kind: 'async', confirmTimeout: 5000, logger })
  try {
    await publisher.start()
    const started = Date.now()
    const refused = codeOf(publisher.sendMessageToQueue(queue, 'x', { userId: 'somebody-else' }))
    const good = codeOf(publisher.sendMessageToQueue(queue, 'y', { userId: 'guest' }))
    assert.equal(await refused, 'PRECONDITION_FAILED')
    assert.ok(Date.now() - started < 1000)
    assert.equal(await good, 'confirmed')
    assert.equal(closes(), 1)
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
})

test("a refusal the broker does not name: the sends in doubt go out one at a time, the refused one fails with the broker's reason, the others are confirmed", async () => {
  const queue = uniqueName('unnamed-refusal')
  await declareQueue(queue)
  const { logger, closes } = countingCloses()
  const publisher = new Publisher({ kind: 'async', confirmTimeout: 5000, logger })
  try {
    await publisher.start()
    const good = Array.from({ length: 5 }, (_, i) => codeOf(publisher.sendMessageToQueue(queue, `g${i}`)))
    // RabbitMQ wants CC as an array: a string closes the channel with 406 "invalid message".
    const bad = publisher
      .sendMessageToQueue(queue, 'bad', { headers: { CC: 'x' } })
      .catch((e: LapinError) => e)
    const err = (await bad) as LapinError
    assert.equal(err.code, 'PRECONDITION_FAILED')
    assert.match(err.message, /invalid message/)
    assert.ok(closes() <= 2, `${closes()} channel closes`)
    assert.deepEqual(await Promise.all(good), Array(5).fill('confirmed'))
    await publisher.sendMessageToQueue(queue, 'after')
    const held = await queueCount(queue)
    assert.ok(held >= 6 && held <= 11, `${held} messages for 6 confirmed sends`)
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
})

test('an internal exchange whose name the broker cuts short (255-byte reply text): refused once, later sends refused at once', async () => {
  const internal = uniqueName(`long-${'x'.repeat(200)}`)
  await declareExchange(internal, 'fanout', true)
  const { logger, closes } = countingCloses()
  const publisher = new Publisher({ kind: 'async', confirmTimeout: 5000, logger })
  try {
    await publisher.start()
    assert.equal(await codeOf(publisher.sendMessage(internal, '', 'one')), 'ACCESS_REFUSED')
    assert.equal(closes(), 1)
    const started = Date.now()
    assert.equal(await codeOf(publisher.sendMessage(internal, '', 'two')), 'ACCESS_REFUSED')
    assert.ok(Date.now() - started < 500)
    assert.equal(closes(), 1, 'the second send was refused without a channel close')
  } finally {
    await publisher.stop()
    await deleteExchange(internal)
  }
})

test('a headers object reused and changed between sends: each send keeps the headers it was given', async () => {
  const queue = uniqueName('reused-headers')
  await declareQueue(queue)
  const exchange = uniqueName('headers-reused')
  await declareExchange(exchange, 'headers')
  await bindHeaders(queue, exchange, { 'x-match': 'all', seq: 1 })
  const publisher = new Publisher({ kind: 'async' })
  try {
    await publisher.start()
    const headers: Record<string, unknown> = {}
    const sends = []
    for (let seq = 0; seq < 3; seq++) {
      headers.seq = seq
      sends.push(codeOf(publisher.sendMessage(exchange, '', 'same', { headers })))
    }
    assert.deepEqual(await Promise.all(sends), ['UNROUTABLE', 'confirmed', 'UNROUTABLE'])
    const held = await drainQueue(queue)
    assert.deepEqual(
      held.map((m) => m.properties.headers?.seq),
      [1],
    )
  } finally {
    await publisher.stop()
    await deleteExchange(exchange)
    await deleteQueue(queue)
  }
})
