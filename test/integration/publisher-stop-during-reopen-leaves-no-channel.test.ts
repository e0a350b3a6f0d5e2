// When stop() runs while the publisher reopens a channel (after a channel error such as a 403), a
// reopen that finishes after stop() has resolved closes its channel at once; otherwise the channel
// stays open for the life of the connection. (The connection keeps one channel of its own, on which
// it checks that exchanges exist.)
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection, Publisher } from 'lapinmq'
import {
  closeAdmin,
  declareExchange,
  deleteExchange,
  listConnections,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'

after(closeAdmin)

test('stop() right after a channel error leaves no channel open on the connection', async () => {
  const name = uniqueName('stop-during-reopen')
  const internal = uniqueName('internal')
  const connection = new Connection({ name })
  const publisher = new Publisher({ kind: 'async', connection })
  const channelsOfOurs = async () => (await listConnections()).find((c) => c.name === name)?.channels
  try {
    await publisher.start()
    // A publish to an internal exchange closes the channel (403); the publisher starts reopening
    // it, and we stop at once.
    await declareExchange(internal, 'fanout', true)
    await assert.rejects(publisher.sendMessage(internal, 'key', 'x'), { code: 'ACCESS_REFUSED' })
    await publisher.stop()
    await sleep(300) // the reopen, had it leaked, is done by now
    assert.equal(connection.state, 'open', 'the connection itself must stay open')
    // One channel stays: the connection's own, on which it checked that the exchange exists.
    await waitFor(
      async () => (await channelsOfOurs()) === 1,
      10_000,
      'the connection to have only its own channel',
    )
    await sleep(500)
    assert.equal(await channelsOfOurs(), 1, 'a channel was opened after stop() resolved')
  } finally {
    await publisher.stop()
    await connection.close()
    await deleteExchange(internal)
  }
})
