// What a publisher holds is bounded: a body larger than the broker takes fails at once (or, if the
// limit was raised past the broker's, by the broker's refusal, sent once and never again), and
// sends waiting while disconnected are bounded by count and by bytes, whatever the caller does.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Connection, type LapinError, type Logger, Publisher } from 'lapinmq'
import { closeAdmin, declareQueue, deleteQueue, drainQueue, uniqueName } from '../helpers/broker.ts'

after(closeAdmin)

const MiB = 1024 * 1024

test('a 140 MiB body rejects MESSAGE_TOO_LARGE at the call, before any byte is sent', async () => {
  const queue = uniqueName('too-large')
  await declareQueue(queue)
  const publisher = new Publisher({ kind: 'async' })
  try {
    await publisher.start()
    const started = Date.now()
    const err = (await publisher
      .sendMessageToQueue(queue, Buffer.alloc(140 * MiB))
      .catch((e) => e)) as LapinError
    assert.equal(err.code, 'MESSAGE_TOO_LARGE')
    assert.match(err.message, /maxMessageSize \(134217728\)/)
    assert.ok(Date.now() - started < 100)
    await publisher.sendMessageToQueue(queue, 'small')
    assert.deepEqual(
      (await drainQueue(queue)).map((m) => m.content.toString()),
      ['small'],
    )
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
})

test("with maxMessageSize raised past the broker's limit: the broker's refusal, in seconds, sent once; the other sends are kept", async () => {
  const queue = uniqueName('too-large-broker')
  await declareQueue(queue)
  const closes: string[] = []
  const logger: Logger = {
    debug() {},
    info() {},
    warn(_obj, msg) {
      if (msg?.includes('channel closed')) closes.push(msg)
    },
    error() {},
  }
  const publisher = new Publisher({ kind: 'async', maxMessageSize: 512 * MiB, logger })
  try {
    await publisher.start()
    const body = Buffer.alloc(140 * MiB)
    const before = publisher.sendMessageToQueue(queue, 'before')
    const started = Date.now()
    const big = publisher.sendMessageToQueue(queue, body)
    const afterBig = publisher.sendMessageToQueue(queue, 'after')
    const err = (await big.catch((e) => e)) as LapinError
    const took = Date.now() - started
    assert.equal(err.code, 'MESSAGE_TOO_LARGE')
    assert.equal(err.replyCode, 406)
    assert.match(err.message, /larger than configured max size/)
    // Framing and sending 140 MiB takes amqplib alone over a second; the broker answers once it has
    // read it all. Far from the send's 30 s deadline either way.
    assert.ok(took < 5000, `refused after ${took} ms`)
    await before
    await afterBig
    assert.equal(closes.length, 1, 'the big message closed one channel, once')
    const bodies = (await drainQueue(queue)).map((m) => m.content.toString())
    assert.ok(bodies.includes('before') && bodies.includes('after'))
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
})

test("whenBufferFull 'wait' is refused; maxMessageSize and maxBufferedBytes are checked", () => {
  assert.throws(() => new Publisher({ kind: 'async', whenBufferFull: 'wait' as never }), /waitForRoom/)
  assert.throws(() => new Publisher({ kind: 'async', maxBufferedBytes: -1 }), RangeError)
  assert.throws(() => new Publisher({ kind: 'async', maxMessageSize: 1024 * MiB }), RangeError)
  new Publisher({ kind: 'async', whenBufferFull: 'reject' })
})

test('a tight send loop of 100 KB bodies while disconnected: what waits stays within maxBufferedBytes, the rest is BUFFER_FULL', async () => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  // Nothing listens there: the publisher keeps waiting for its connection.
  const connection = new Connection({
    url: 'amqp://guest:guest@127.0.0.1:1/',
    recovery: { initialMaxRetries: Number.POSITIVE_INFINITY, initialDelay: 1000, maxDelay: 1000 },
  })
  const maxBufferedBytes = 16 * MiB
  const publisher = new Publisher({ kind: 'async', connection, maxBufferedBytes, maxBuffered: 1_000_000 })
  const codes = new Map<string, number>()
  const sends: Promise<void>[] = []
  try {
    gc()
    const baseline = process.memoryUsage().arrayBuffers
    for (let i = 0; i < 5000; i++) {
      const send = publisher.sendMessageToQueue('q', Buffer.allocUnsafe(100_000))
      send.catch((e: LapinError) => codes.set(e.code, (codes.get(e.code) ?? 0) + 1))
      sends.push(send)
    }
    // Freed bodies leave the count only after their weak callbacks run: collect a few times.
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setImmediate(resolve))
      gc()
    }
    const held = process.memoryUsage().arrayBuffers - baseline
    assert.equal(publisher.waiting, Math.floor(maxBufferedBytes / 100_000))
    assert.equal(codes.get('BUFFER_FULL'), 5000 - publisher.waiting)
    // The exact bound is the count above; this catches the bodies of the sends refused being kept
    // (5,000 × 100 KB would be 477 MiB) while leaving room for the collector's timing.
    assert.ok(held < 4 * maxBufferedBytes, `${Math.round(held / MiB)} MiB of bodies held`)
  } finally {
    await publisher.stop({ timeout: 0 })
    await Promise.allSettled(sends)
    await connection.close()
  }
  assert.equal(codes.get('CONNECTION_CLOSED'), Math.floor(maxBufferedBytes / 100_000))
})
