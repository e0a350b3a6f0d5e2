// The proxy's latency makes a round trip cost what it says, which is what latency-bound tests and
// benchmarks (sync vs async confirms on a slow link) rely on: a sync publisher is held to about
// one message per round trip, an async one is not.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Connection, Publisher } from 'lapinmq'
import { closeAdmin, declareQueue, deleteQueue, uniqueName } from '../helpers/broker.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'

after(closeAdmin)

test('one-way latency of 10 ms: sync confirms take ≥ 20 ms each, an async window overlaps them', async () => {
  const proxy = await TcpProxy.start()
  const queue = uniqueName('latency')
  await declareQueue(queue, { durable: false })
  const connection = new Connection({ url: proxy.url(), name: 'latency' })
  try {
    const sync = new Publisher({ kind: 'sync', connection })
    const asyncPublisher = new Publisher({ kind: 'async', connection })
    await sync.start()
    await asyncPublisher.start()
    proxy.latency = 10
    const n = 20
    let t = performance.now()
    for (let i = 0; i < n; i++) await sync.sendMessageToQueue(queue, 's', { persistent: false })
    const syncMs = performance.now() - t
    t = performance.now()
    await Promise.all(
      Array.from({ length: n }, () => asyncPublisher.sendMessageToQueue(queue, 'a', { persistent: false })),
    )
    const asyncMs = performance.now() - t
    assert.ok(syncMs >= n * 20, `sync: ${syncMs.toFixed(0)} ms for ${n} confirms, expected ≥ ${n * 20}`)
    assert.ok(asyncMs < syncMs / 4, `async ${asyncMs.toFixed(0)} ms vs sync ${syncMs.toFixed(0)} ms`)
    await sync.stop()
    await asyncPublisher.stop()
  } finally {
    await connection.close()
    await proxy.close()
    await deleteQueue(queue)
  }
})
