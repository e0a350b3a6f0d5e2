// When stop() runs while the publisher reopens a channel (after a channel error such as a 404), a
// reopen that finishes after stop() has resolved closes its channel at once; otherwise the channel
// stays open for the life of the connection.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Publisher } from 'lapinmq'
import { closeAdmin, listConnections, uniqueName, waitFor } from '../helpers/broker.ts'

after(closeAdmin)

test('stop() right after a channel error leaves no channel open on the connection', async () => {
  const name = uniqueName('stop-during-reopen')
  const connection = new Connection({ name })
  const publisher = new Publisher({ kind: 'async', connection })
  const channelsOfOurs = async () => (await listConnections()).find((c) => c.name === name)?.channels
  try {
    await publisher.start()
    // The 404 closes the channel; the publisher starts reopening it, and we stop at once.
    await assert.rejects(publisher.sendMessage(uniqueName('missing'), 'key', 'x'), { code: 'NOT_FOUND' })
    await publisher.stop()
    await sleep(300) // the reopen, had it leaked, is done by now
    assert.equal(connection.state, 'open', 'the connection itself must stay open')
    await waitFor(async () => (await channelsOfOurs()) === 0, 10_000, 'the connection to have no channel')
    await sleep(500)
    assert.equal(await channelsOfOurs(), 0, 'a channel was opened after stop() resolved')
  } finally {
    await publisher.stop()
    await connection.close()
  }
})
