// Bad input gets a clear error before anything is sent, and leaves the publisher usable: after every
// bad call below, one good send puts exactly one message in the queue.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { inspect } from 'node:util'
import { Connection, Consumer, LapinError, MessageStatus, Publisher, UnroutableError } from 'lapinmq'
import {
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  queueCount,
  uniqueName,
} from '../helpers/broker.ts'

after(closeAdmin)

/** 100 characters, 300 UTF-8 bytes: too long although `.length` is only 100. */
const tooLong = '漢'.repeat(100)
/** 85 characters, exactly 255 UTF-8 bytes: the longest short string AMQP allows. */
const longest = '漢'.repeat(85)
const taskFunction = () => MessageStatus.SUCCESS

test('names over 255 UTF-8 bytes throw RangeError before anything is sent', async () => {
  assert.equal(tooLong.length, 100)
  assert.equal(Buffer.byteLength(tooLong), 300)
  const queue = uniqueName('bad-names')
  await declareQueue(queue)
  const publisher = new Publisher({ kind: 'async' })
  try {
    await publisher.start()
    const tooLongError = (name: string) => ({ name: 'RangeError', message: new RegExp(`${name}.*255.*300`) })
    assert.throws(() => publisher.sendMessage(tooLong, queue, 'x'), tooLongError('exchange'))
    assert.throws(() => publisher.sendMessage('', tooLong, 'x'), tooLongError('routingKey'))
    assert.throws(() => publisher.sendMessageToQueue(tooLong, 'x'), tooLongError('routingKey'))
    assert.throws(
      () => publisher.sendMessageToQueue(queue, 'x', { messageId: tooLong }),
      tooLongError('messageId'),
    )
    assert.throws(() => new Consumer({ queueName: tooLong, taskFunction }), tooLongError('queueName'))
    assert.throws(
      () => new Consumer({ queueName: queue, taskFunction, exchange: tooLong }),
      tooLongError('exchange'),
    )
    assert.throws(
      () => new Consumer({ queueName: queue, taskFunction, exchange: 'amq.direct', bindingKeys: [tooLong] }),
      tooLongError('bindingKeys'),
    )
    assert.equal(publisher.unconfirmed + publisher.waiting, 0, 'a bad send was queued')

    // 255 bytes is still allowed: the broker answers (no such queue: returned), no RangeError.
    await assert.rejects(publisher.sendMessageToQueue(longest, 'x'), UnroutableError)

    await publisher.sendMessageToQueue(queue, 'good')
    assert.equal(await queueCount(queue), 1)
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
})

test('prefetch outside 1..65535 and concurrency below 1 throw RangeError', () => {
  for (const prefetch of [0, 70_000, -1, 1.5]) {
    assert.throws(() => new Consumer({ queueName: 'q', taskFunction, prefetch }), {
      name: 'RangeError',
      message: /prefetch must be an integer between 1 and 65535/,
    })
  }
  for (const concurrency of [0, -3, 2.5]) {
    assert.throws(() => new Consumer({ queueName: 'q', taskFunction, concurrency }), {
      name: 'RangeError',
      message: /concurrency must be an integer between 1/,
    })
  }
  // The boundaries themselves are accepted (nothing connects before start()).
  assert.doesNotThrow(() => new Consumer({ queueName: 'q', taskFunction, prefetch: 1 }))
  assert.doesNotThrow(() => new Consumer({ queueName: 'q', taskFunction, prefetch: 65_535 }))
})

test("an unknown publisher kind is a TypeError naming 'sync' and 'async'", () => {
  for (const kind of ['fast', undefined, 'SYNC']) {
    assert.throws(
      () => new Publisher({ kind } as unknown as ConstructorParameters<typeof Publisher>[0]),
      (err: unknown) => {
        assert.ok(err instanceof TypeError, String(err))
        assert.match(err.message, /'sync'/)
        assert.match(err.message, /'async'/)
        return true
      },
    )
  }
  assert.throws(() => new Publisher({ kind: 'async', maxInFlight: 0 }), RangeError)
  assert.throws(() => new Publisher({ kind: 'async', confirmTimeout: 0 }), RangeError)
})

test('a malformed URL is a TypeError that never echoes the password', () => {
  for (const url of [
    'amqp://user:s3cr3t@%%%',
    'amqp://user:s3cr3t%zz@localhost/',
    'http://user:s3cr3t@localhost/',
    'amqp://user:s3cr3t@localhost/a/b',
    'amqp://user:s3cr3t@localhost/?heartbeat=soon',
  ]) {
    assert.throws(
      () => new Connection({ url }),
      (err: unknown) => {
        assert.ok(err instanceof TypeError, `${url}: ${String(err)}`)
        for (const text of [err.message, err.stack ?? '', inspect(err, { depth: 10 })]) {
          assert.ok(!text.includes('s3cr3t'), `the error for ${url} shows the password: ${text}`)
        }
        return true
      },
    )
  }
})

test('a body that is not a string, Buffer or Uint8Array is a TypeError; nothing is sent', async () => {
  const queue = uniqueName('bad-body')
  await declareQueue(queue)
  const publisher = new Publisher({ kind: 'sync' })
  try {
    await publisher.start()
    for (const body of [42, null, undefined, { a: 1 }, [1, 2], new ArrayBuffer(4)]) {
      assert.throws(
        () => publisher.sendMessageToQueue(queue, body as unknown as string),
        { name: 'TypeError', message: /body must be a string, Buffer or Uint8Array/ },
        `body ${inspect(body)} was accepted`,
      )
    }
    assert.throws(() => publisher.sendMessageToQueue(queue, 'x', { expiration: -1 }), RangeError)
    assert.throws(() => publisher.sendMessageToQueue(queue, 'x', { expiration: 1.5 }), RangeError)
    assert.throws(() => publisher.sendMessageToQueue(queue, 'x', { priority: 256 }), RangeError)
    assert.throws(
      () =>
        publisher.sendMessageToQueue(queue, 'x', { headers: 'x-a=1' as unknown as Record<string, unknown> }),
      TypeError,
    )
    assert.throws(
      () =>
        publisher.sendMessageToQueue(queue, 'x', {
          callbacks: { ackCallback: 'yes' as unknown as () => void },
        }),
      TypeError,
    )
    await publisher.sendMessageToQueue(queue, 'good')
    assert.equal(await queueCount(queue), 1)
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
})

for (const kind of ['sync', 'async'] as const) {
  test(`${kind}: header values that cannot be encoded reject with INVALID_MESSAGE; nothing is sent`, async () => {
    const queue = uniqueName(`bad-headers-${kind}`)
    await declareQueue(queue)
    const publisher = new Publisher({ kind })
    try {
      await publisher.start()
      const badHeaders: Record<string, unknown>[] = [
        { callback: () => 1 },
        { id: Symbol('id') },
        { big: 10n },
        { nested: { deeper: [Symbol('x')] } },
        { huge: 'x'.repeat(70_000) }, // more than amqplib's 64 KiB property buffer
      ]
      for (const headers of badHeaders) {
        let nacks = 0
        let acks = 0
        const err = await publisher
          .sendMessageToQueue(queue, 'bad', {
            headers,
            callbacks: { ackCallback: () => acks++, nackCallback: () => nacks++ },
          })
          .then(
            () => assert.fail(`headers ${inspect(headers).slice(0, 60)} were sent`),
            (e: unknown) => e,
          )
        assert.ok(err instanceof LapinError, String(err))
        assert.equal(err.code, 'INVALID_MESSAGE')
        assert.match(err.message, /could not be encoded/)
        assert.deepEqual([acks, nacks], [0, 1])
        assert.equal(publisher.unconfirmed, 0, 'an unencodable message took a place in the window')
      }
      // The window and delivery tags are intact: good messages before and after are confirmed in order.
      const outcomes = await Promise.all([
        publisher.sendMessageToQueue(queue, 'one').then(() => 'ok'),
        publisher
          .sendMessageToQueue(queue, 'bad', { headers: { f: () => 1 } })
          .catch((e: LapinError) => e.code),
        publisher.sendMessageToQueue(queue, 'two').then(() => 'ok'),
      ])
      assert.deepEqual(outcomes, ['ok', 'INVALID_MESSAGE', 'ok'])
      assert.deepEqual(
        (await drainQueue(queue)).map((m) => m.content.toString()),
        ['one', 'two'],
      )
      await publisher.sendMessageToQueue(queue, 'good')
      assert.equal(await queueCount(queue), 1)
    } finally {
      await publisher.stop()
      await deleteQueue(queue)
    }
  })
}
