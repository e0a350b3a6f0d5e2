// A send whose confirm never comes rejects with ConfirmTimeoutError at its deadline, and every send
// settles exactly once even when the connection is cut with hundreds in flight. The broker's
// answers are held back by an in-process TCP proxy (a black hole), so confirms never arrive.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfirmTimeoutError, Connection, LapinError, Publisher, type PublisherOptions } from 'lapinmq'
import { closeAdmin, declareQueue, deleteQueue, drainQueue, uniqueName, waitFor } from '../helpers/broker.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'

after(closeAdmin)

/**
 * A fresh queue and a publisher whose connection goes through a TCP proxy (no heartbeats, so a
 * held-back broker goes unnoticed), all cleaned up after `body`.
 */
async function throughProxy(
  prefix: string,
  options: Omit<PublisherOptions, 'connection'>,
  body: (t: {
    queue: string
    proxy: TcpProxy
    connection: Connection
    publisher: Publisher
  }) => Promise<void>,
): Promise<void> {
  const queue = uniqueName(prefix)
  await declareQueue(queue)
  const proxy = await TcpProxy.start()
  const connection = new Connection({ url: proxy.url(), heartbeat: 0 })
  const publisher = new Publisher({ ...options, connection })
  try {
    await body({ queue, proxy, connection, publisher })
  } finally {
    proxy.resume()
    await publisher.stop()
    await connection.close()
    await proxy.close()
    await deleteQueue(queue)
  }
}

for (const kind of ['sync', 'async'] as const) {
  test(`${kind}: a send with no confirm rejects CONFIRM_TIMEOUT at its deadline, once`, async () => {
    await throughProxy(
      `confirm-timeout-${kind}`,
      { kind, confirmTimeout: 300 },
      async ({ queue, proxy, publisher }) => {
        await publisher.start()
        await publisher.sendMessageToQueue(queue, 'before') // the path works before the black hole

        proxy.pause()
        const nacks: LapinError[] = []
        let acks = 0
        const started = performance.now()
        const err = await publisher
          .sendMessageToQueue(queue, 'unanswered', {
            callbacks: { ackCallback: () => acks++, nackCallback: (e) => nacks.push(e) },
          })
          .then(
            () => assert.fail('a send was confirmed through a black hole'),
            (e: unknown) => e,
          )
        const elapsed = performance.now() - started
        assert.ok(err instanceof ConfirmTimeoutError, `expected ConfirmTimeoutError, got ${String(err)}`)
        assert.equal(err.code, 'CONFIRM_TIMEOUT')
        assert.ok(elapsed >= 295, `rejected after ${elapsed.toFixed(0)} ms, before its 300 ms deadline`)
        assert.ok(elapsed < 600, `rejected after ${elapsed.toFixed(0)} ms, long past its 300 ms deadline`)
        assert.equal(nacks.length, 1)
        assert.equal(nacks[0], err)
        assert.equal(publisher.unconfirmed, 0, 'a timed-out send still holds a place in the window')

        // The late confirm arrives now: it must not settle the send a second time.
        proxy.resume()
        await publisher.sendMessageToQueue(queue, 'after')
        await sleep(100)
        assert.equal(acks, 0, 'ackCallback called after the send had timed out')
        assert.equal(nacks.length, 1, 'nackCallback called twice')
        // Timed out means "in doubt", not "lost": the broker did take it.
        assert.deepEqual(
          (await drainQueue(queue)).map((m) => m.content.toString()),
          ['before', 'unanswered', 'after'],
        )
      },
    )
  })
}

test('sync: a send waiting behind an unconfirmed one times out at its own deadline', async () => {
  await throughProxy(
    'confirm-timeout-waiting',
    { kind: 'sync', confirmTimeout: 300 },
    async ({ queue, proxy, publisher }) => {
      await publisher.start()
      proxy.pause()
      const first = publisher.sendMessageToQueue(queue, 'first')
      await sleep(100)
      const second = publisher.sendMessageToQueue(queue, 'second')
      assert.equal(publisher.waiting, 1)
      const t0 = performance.now()
      await assert.rejects(first, { code: 'CONFIRM_TIMEOUT' })
      const t1 = performance.now()
      await assert.rejects(second, { code: 'CONFIRM_TIMEOUT' })
      const t2 = performance.now()
      assert.ok(t1 - t0 < 300, 'the first send did not time out at its deadline')
      assert.ok(
        t2 - t0 >= 290,
        `the second send timed out ${(t2 - t0).toFixed(0)} ms after the call, before its deadline`,
      )
    },
  )
})

test('async: cutting the connection with 500 sends in flight settles each exactly once, with a LapinError', async () => {
  const confirmTimeout = 2_000
  await throughProxy(
    'cut-in-flight',
    { kind: 'async', confirmTimeout },
    async ({ queue, proxy, connection, publisher }) => {
      connection.on('error', () => {}) // the cut is expected
      await publisher.start()
      proxy.pause() // no confirm gets back: all 500 stay in flight until the cut
      const settled = new Array<number>(500).fill(0)
      const callbacks = new Array<number>(500).fill(0)
      const count = (counts: number[], i: number) => {
        counts[i] = (counts[i] ?? 0) + 1
      }
      const errors: unknown[] = []
      const started = performance.now()
      const sends = Array.from({ length: 500 }, (_, i) =>
        publisher
          .sendMessageToQueue(queue, `m${i}`, {
            callbacks: { ackCallback: () => count(callbacks, i), nackCallback: () => count(callbacks, i) },
          })
          .then(
            () => count(settled, i),
            (e: unknown) => {
              count(settled, i)
              errors[i] = e
            },
          ),
      )
      await waitFor(() => publisher.unconfirmed === 500, 2_000, 'all 500 sends to be published')
      proxy.cut()
      const all = Promise.all(sends)
      const deadline = sleep(confirmTimeout + 1_000, 'hung', { ref: false })
      assert.notEqual(await Promise.race([all, deadline]), 'hung', 'a send did not settle in time')
      const elapsed = performance.now() - started

      await sleep(200) // a second settle would show up here
      assert.deepEqual(settled, new Array(500).fill(1), 'a send settled other than exactly once')
      assert.deepEqual(callbacks, new Array(500).fill(1), 'a callback was called other than exactly once')
      for (let i = 0; i < 500; i++) {
        assert.ok(errors[i] instanceof LapinError, `send ${i} settled with ${String(errors[i])}`)
      }
      assert.ok(elapsed < confirmTimeout + 1_000, `took ${elapsed.toFixed(0)} ms`)

      // The publisher reconnects through the proxy once the broker answers again.
      proxy.resume()
      await publisher.sendMessageToQueue(queue, 'after the cut')
      assert.equal(proxy.accepted, 2, 'expected exactly one reconnect')
    },
  )
})
