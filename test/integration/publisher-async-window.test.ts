// An 'async' publisher keeps at most maxInFlight messages unconfirmed (a sliding window), confirms
// every message, and streams 100,000 messages with waitForRoom() in bounded memory.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Publisher } from 'lapinmq'
import {
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'

after(closeAdmin)

/** A full garbage collection, without --expose-gc on the command line. */
function collectGarbage(): () => void {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  return () => {
    gc()
    gc()
  }
}

test('sends never exceed maxInFlight unconfirmed, and all are confirmed', async () => {
  const queue = uniqueName('async-window')
  await declareQueue(queue)
  const publisher = new Publisher({ kind: 'async', maxInFlight: 50 })
  let max = 0
  const sample = (): void => {
    max = Math.max(max, publisher.unconfirmed)
  }
  const sampler = setInterval(sample, 0)
  try {
    await publisher.start()
    let acks = 0
    const sends: Promise<void>[] = []
    for (let i = 0; i < 500; i++) {
      sends.push(
        publisher.sendMessageToQueue(queue, `m${i}`, {
          callbacks: {
            ackCallback: () => {
              acks++
              sample()
            },
          },
        }),
      )
      sample()
    }
    // 500 calls at once: the window is full and the rest wait for room.
    assert.equal(publisher.unconfirmed, 50)
    assert.equal(publisher.waiting, 450)
    await Promise.all(sends)
    clearInterval(sampler)

    assert.equal(max, 50, 'the window was not used up to maxInFlight, or went beyond it')
    assert.equal(acks, 500)
    assert.equal(publisher.unconfirmed, 0)
    const delivered = (await drainQueue(queue)).map((m) => m.content.toString())
    assert.equal(delivered.length, 500)
    assert.equal(new Set(delivered).size, 500, 'a message was delivered twice')
  } finally {
    clearInterval(sampler)
    await publisher.stop()
    await deleteQueue(queue)
  }
})

test('100,000 sends with waitForRoom(): all confirmed, window respected, heap bounded', async (t) => {
  const queue = uniqueName('async-100k')
  await declareQueue(queue, { durable: false })
  const gc = collectGarbage()
  const maxInFlight = 50
  const total = 100_000
  const publisher = new Publisher({ kind: 'async', maxInFlight })
  try {
    await publisher.start()
    let confirmed = 0
    let failed = 0
    let maxOutstanding = 0
    let heapAfter10k = 0
    // Transient messages: the broker confirms them without a disk write, so the test measures the
    // publisher (window, memory), not the broker's fsync.
    const body = Buffer.from('a small message of some forty bytes.....')
    const onAck = (): void => {
      confirmed++
    }
    const onNack = (): void => {
      failed++
    }
    const started = performance.now()
    for (let i = 0; i < total; i++) {
      await publisher.waitForRoom()
      maxOutstanding = Math.max(maxOutstanding, publisher.unconfirmed + publisher.waiting)
      publisher.sendMessageToQueue(queue, body, {
        persistent: false,
        callbacks: { ackCallback: onAck, nackCallback: onNack },
      })
      maxOutstanding = Math.max(maxOutstanding, publisher.unconfirmed + publisher.waiting)
      if (i === 10_000) {
        gc()
        heapAfter10k = process.memoryUsage().heapUsed
      }
    }
    await waitFor(() => confirmed + failed === total, 30_000, 'every send to settle')
    const seconds = (performance.now() - started) / 1000
    gc()
    const heapAfter100k = process.memoryUsage().heapUsed
    const growthMb = (heapAfter100k - heapAfter10k) / 2 ** 20
    t.diagnostic(
      `100k async sends: ${seconds.toFixed(2)} s (${Math.round(total / seconds)} msg/s), ` +
        `heap growth after the first 10k: ${growthMb.toFixed(2)} MB`,
    )

    assert.equal(failed, 0)
    assert.equal(confirmed, total)
    assert.ok(maxOutstanding <= maxInFlight, `unconfirmed + waiting reached ${maxOutstanding}`)
    assert.equal(maxOutstanding, maxInFlight, 'the window was never full: the test proves nothing')
    assert.ok(growthMb < 30, `heap grew by ${growthMb.toFixed(2)} MB between 10k and 100k sends`)
    await waitFor(async () => (await queueCount(queue)) === total, 10_000, 'the queue to hold every message')
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
})
