// A publish the broker refuses closes the publishing channel. The refused send fails at once with
// the broker's reason and is never sent again (republished, it would close every channel it went
// out on until its deadline); the other sends on the channel are republished and confirmed.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { type LapinError, type Logger, Publisher } from 'lapinmq'
import {
  closeAdmin,
  declareExchange,
  declareQueue,
  deleteExchange,
  deleteQueue,
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
