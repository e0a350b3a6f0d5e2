// A send started before stop() and still waiting for room in the window is published and confirmed
// while stop() waits, not left to time out and be rejected with CONNECTION_CLOSED.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Publisher } from 'lapinmq'
import { closeAdmin, declareQueue, deleteQueue, drainQueue, uniqueName } from '../helpers/broker.ts'

after(closeAdmin)

for (const [kind, maxInFlight] of [
  ['sync', 1],
  ['async', 10],
] as const) {
  test(`${kind}: stop() right after 100 unawaited sends publishes and confirms all of them`, async () => {
    const queue = uniqueName(`stop-flush-${kind}`)
    await declareQueue(queue)
    const publisher = new Publisher(kind === 'sync' ? { kind } : { kind, maxInFlight })
    try {
      await publisher.start()
      const bodies = Array.from({ length: 100 }, (_, i) => `m${i}`)
      const outcomes = bodies.map((body) =>
        publisher.sendMessageToQueue(queue, body).then(
          () => 'confirmed',
          (e: { code?: string }) => e.code,
        ),
      )
      assert.ok(publisher.waiting > 0, 'no send was waiting for room: the test proves nothing')
      const started = performance.now()
      await publisher.stop({ timeout: 5_000 })
      const elapsed = performance.now() - started

      assert.deepEqual(await Promise.all(outcomes), new Array(100).fill('confirmed'))
      assert.ok(elapsed < 2_000, `stop() took ${elapsed.toFixed(0)} ms: it waited out its timeout`)
      const delivered = (await drainQueue(queue)).map((m) => m.content.toString())
      assert.deepEqual(delivered, bodies)
    } finally {
      await publisher.stop()
      await deleteQueue(queue)
    }
  })
}

test('a send after stop() resolved is rejected at once with CONNECTION_CLOSED and sends nothing', async () => {
  const queue = uniqueName('stop-late-send')
  await declareQueue(queue)
  const publisher = new Publisher({ kind: 'async' })
  try {
    await publisher.start()
    const first = publisher.sendMessageToQueue(queue, 'first')
    await publisher.stop()
    await first
    let nacked = 0
    await assert.rejects(
      publisher.sendMessageToQueue(queue, 'too late', { callbacks: { nackCallback: () => nacked++ } }),
      { code: 'CONNECTION_CLOSED' },
    )
    assert.equal(nacked, 1)
    assert.deepEqual(
      (await drainQueue(queue)).map((m) => m.content.toString()),
      ['first'],
    )
  } finally {
    await publisher.stop()
    await deleteQueue(queue)
  }
})
