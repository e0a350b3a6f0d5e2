// A broker nack (basic.nack: here a full queue with x-overflow reject-publish) rejects the send with
// PublishNackedError and calls nackCallback once; the publisher keeps working.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type LapinError, Publisher, PublishNackedError } from 'lapinmq'
import {
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  queueCount,
  uniqueName,
} from '../helpers/broker.ts'

after(closeAdmin)

for (const kind of ['sync', 'async'] as const) {
  test(`${kind}: a send the broker nacks rejects PUBLISH_NACKED and calls nackCallback once`, async () => {
    const full = uniqueName(`full-${kind}`)
    const ok = uniqueName(`ok-${kind}`)
    await declareQueue(full, {
      durable: true,
      arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
    })
    await declareQueue(ok)
    const publisher = new Publisher({ kind })
    try {
      await publisher.start()
      const nacks: LapinError[] = []
      let acks = 0
      const err = await publisher
        .sendMessageToQueue(full, 'no room', {
          callbacks: { ackCallback: () => acks++, nackCallback: (e) => nacks.push(e) },
        })
        .then(
          () => assert.fail('a message to a full reject-publish queue was confirmed'),
          (e: unknown) => e,
        )
      assert.ok(err instanceof PublishNackedError, `expected PublishNackedError, got ${String(err)}`)
      assert.equal(err.code, 'PUBLISH_NACKED')
      await sleep(200)
      assert.equal(nacks.length, 1, 'nackCallback must be called exactly once')
      assert.equal(nacks[0], err)
      assert.equal(acks, 0)
      assert.equal(await queueCount(full), 0)

      // Several nacks in a row, interleaved with good sends, each get their own outcome.
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          publisher.sendMessageToQueue(i % 2 ? full : ok, `m${i}`).then(
            () => 'confirmed',
            (e: LapinError) => e.code,
          ),
        ),
      )
      assert.deepEqual(
        outcomes,
        Array.from({ length: 10 }, (_, i) => (i % 2 ? 'PUBLISH_NACKED' : 'confirmed')),
      )
      assert.deepEqual(
        (await drainQueue(ok)).map((m) => m.content.toString()),
        ['m0', 'm2', 'm4', 'm6', 'm8'],
      )
    } finally {
      await publisher.stop()
      await deleteQueue(full)
      await deleteQueue(ok)
    }
  })
}
