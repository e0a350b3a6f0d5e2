// A ConnectionPool on the shared broker: each publisher and consumer started on it gets its channel
// on the least-loaded connection (counted on the broker's side with rabbitmqctl), a stop frees its
// place for the next start, messages go through end to end, a closed pool refuses later starts
// with a typed error, and no password shows in util.inspect or JSON.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { inspect } from 'node:util'
import { ConnectionPool, Consumer, type Message, MessageStatus, Publisher } from 'lapinmq'
import {
  brokerUrl,
  closeAdmin,
  deleteQueue,
  listConnections,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'

after(closeAdmin)

/** Channels on the broker of each connection whose name starts with `prefix`, by name. */
async function channelsOf(prefix: string): Promise<Record<string, number>> {
  const rows = (await listConnections()).filter((c) => c.name.startsWith(prefix))
  return Object.fromEntries(rows.map((r) => [r.name, r.channels]).sort())
}

/** Waits until the broker shows exactly `wanted` channels per connection of the pool. */
async function expectChannels(pool: ConnectionPool, wanted: number[]): Promise<void> {
  const expected = Object.fromEntries(pool.connections.map((c, i) => [c.name, wanted[i]]))
  let seen: Record<string, number> = {}
  await waitFor(
    async () => {
      seen = await channelsOf(`${pool.name}#`)
      return JSON.stringify(seen) === JSON.stringify(expected)
    },
    15_000,
    `channels ${JSON.stringify(expected)}`,
  ).catch((err: unknown) => {
    assert.fail(`${String(err)}; the broker shows ${JSON.stringify(seen)}`)
  })
}

test('a pool of 3 with 6 publishers and 3 consumers: 3 channels on each connection; a stop frees its place', async () => {
  const name = uniqueName('pool')
  const pool = new ConnectionPool({ size: 3, url: brokerUrl, name })
  const queues = [0, 1, 2].map((i) => `${name}-q${i}`)
  const received: string[] = []
  const taskFunction = (message: Message) => {
    received.push(message.body.toString())
    return MessageStatus.SUCCESS
  }
  try {
    const publishers = Array.from({ length: 6 }, () => new Publisher({ kind: 'async', connection: pool }))
    const consumers = queues.map((queueName) => new Consumer({ queueName, taskFunction, connection: pool }))
    await Promise.all([...publishers.map((p) => p.start()), ...consumers.map((c) => c.start())])
    assert.deepEqual(pool.loads, [3, 3, 3])
    await expectChannels(pool, [3, 3, 3])

    // End to end through the pool: every publisher to every queue.
    const sent: string[] = []
    await Promise.all(
      publishers.flatMap((p, i) =>
        queues.map((q, j) => {
          sent.push(`${i}-${j}`)
          return p.sendMessageToQueue(q, `${i}-${j}`)
        }),
      ),
    )
    await waitFor(() => received.length === sent.length, 10_000, 'every message consumed')
    assert.deepEqual([...received].sort(), [...sent].sort())

    // Publishers 0..5 went to connections 0,1,2,0,1,2 (started first): stopping publisher 4 frees
    // a place on connection 1, and the next start goes there.
    await publishers[4]?.stop()
    assert.deepEqual(pool.loads, [3, 2, 3])
    await expectChannels(pool, [3, 2, 3])
    const late = new Publisher({ kind: 'sync', connection: pool })
    await late.start()
    assert.deepEqual(pool.loads, [3, 3, 3])
    await expectChannels(pool, [3, 3, 3])
    await late.sendMessageToQueue(queues[0] as string, 'late')
    await waitFor(() => received.includes('late'), 10_000, 'the late message')

    for (const out of [inspect(pool), JSON.stringify(pool), inspect(pool.connections)]) {
      assert.ok(!out.includes(':guest@'), out)
      assert.match(out, /guest:\*\*\*@/)
    }
    assert.deepEqual(
      pool.toJSON().connections.map((c) => [c.name, c.state, c.load]),
      [0, 1, 2].map((i) => [`${name}#${i}`, 'open', 3]),
    )

    await Promise.all([...publishers, late].map((p) => p.stop()))
    await Promise.all(consumers.map((c) => c.stop()))
    assert.deepEqual(pool.loads, [0, 0, 0])
    // Stopping users leaves the pool's connections open: they are the pool's to close.
    await expectChannels(pool, [0, 0, 0])
  } finally {
    await pool.close()
    await Promise.all(queues.map(deleteQueue))
  }
  assert.deepEqual(await channelsOf(`${name}#`), {})
})

test('a closed pool refuses later starts with ConnectionClosedError, and places nobody', async () => {
  const name = uniqueName('pool-closed')
  const pool = new ConnectionPool({ size: 2, url: brokerUrl, name })
  await pool.connect()
  await pool.close()
  await pool.close()
  assert.deepEqual(
    pool.connections.map((c) => c.state),
    ['closed', 'closed'],
  )
  const publisher = new Publisher({ kind: 'async', connection: pool })
  await assert.rejects(publisher.start(), { name: 'ConnectionClosedError', code: 'CONNECTION_CLOSED' })
  const consumer = new Consumer({
    queueName: `${name}-q`,
    taskFunction: () => MessageStatus.SUCCESS,
    connection: pool,
  })
  await assert.rejects(consumer.start(), { name: 'ConnectionClosedError', code: 'CONNECTION_CLOSED' })
  assert.deepEqual(pool.loads, [0, 0])
  await publisher.stop()
  await consumer.stop()
  assert.deepEqual(await channelsOf(`${name}#`), {})
})

test('declare() declares on every connection of the pool; deleteQueue() deletes it', async () => {
  const name = uniqueName('pool-declare')
  const queue = `${name}-q`
  const pool = new ConnectionPool({ size: 2, url: brokerUrl, name })
  try {
    assert.throws(() => pool.declare({ queues: [{ name: '' }] }), TypeError)
    await pool.declare({ queues: [{ name: queue, durable: false }] })
    // Each connection declared it on its side channel: one channel each.
    await expectChannels(pool, [1, 1])
    assert.equal((await pool.checkQueue(queue)).messageCount, 0)
    await pool.deleteQueue(queue)
    await assert.rejects(pool.checkQueue(queue), { code: 'NOT_FOUND' })
  } finally {
    await pool.close()
    await deleteQueue(queue)
  }
})
