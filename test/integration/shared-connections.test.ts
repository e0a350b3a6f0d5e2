// Publishers and consumers that name no connection share two TCP connections (one to publish, one to
// consume), with a channel each, and the shared connections close when their last user stops. An
// explicit Connection is one TCP connection with a channel per publisher or consumer.
// Counted on the broker's side with rabbitmqctl (about a second per call).
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { Connection, Consumer, type Message, MessageStatus, Publisher } from 'lapinmq'
import { closeAdmin, deleteQueue, listConnections, uniqueName, waitFor } from '../helpers/broker.ts'

after(closeAdmin)

/** This process's connections on the broker, by name. */
async function ours(match: (name: string) => boolean): Promise<Map<string, number>> {
  const rows = (await listConnections()).filter((c) => match(c.name))
  const byName = new Map<string, number>()
  for (const row of rows) {
    assert.ok(!byName.has(row.name), `two connections named ${row.name}`)
    byName.set(row.name, row.channels)
  }
  return byName
}

/** A consumer that records the bodies it gets. */
function recordingConsumer(queueName: string, received: string[], connection?: Connection): Consumer {
  const taskFunction = (message: Message) => {
    received.push(message.body.toString())
    return MessageStatus.SUCCESS
  }
  return new Consumer(connection ? { queueName, taskFunction, connection } : { queueName, taskFunction })
}

test('two publishers and two consumers with no connection: two TCP connections, four channels', async () => {
  const pid = `:${process.pid}`
  const sharedNames = [`lapinmq:publish${pid}`, `lapinmq:consume${pid}`]
  const isShared = (name: string) => name.startsWith('lapinmq:') && name.endsWith(pid)
  assert.equal((await ours(isShared)).size, 0, 'shared connections open before the test')

  const queues = [uniqueName('shared-a'), uniqueName('shared-b')]
  const received: string[][] = [[], []]
  const publishers = [new Publisher({ kind: 'sync' }), new Publisher({ kind: 'async' })]
  const consumers = queues.map((q, i) => recordingConsumer(q, received[i] as string[]))
  try {
    await Promise.all([...publishers.map((p) => p.start()), ...consumers.map((c) => c.start())])
    await publishers[0]?.sendMessageToQueue(queues[1] as string, 'from sync')
    await publishers[1]?.sendMessageToQueue(queues[0] as string, 'from async')
    await waitFor(() => received.flat().length === 2, 5_000, 'both messages to be consumed')
    assert.deepEqual(received, [['from async'], ['from sync']])

    let connections = new Map<string, number>()
    await waitFor(
      async () => {
        connections = await ours(isShared)
        return [...connections.values()].reduce((a, b) => a + b, 0) === 4
      },
      10_000,
      'four channels',
    )
    assert.deepEqual(
      [...connections.entries()].sort(),
      [
        [sharedNames[1], 2],
        [sharedNames[0], 2],
      ],
      'expected one publishing and one consuming connection, two channels each',
    )

    // One publisher stops: its connection stays for the other publisher.
    await publishers[0]?.stop()
    await waitFor(
      async () => (await ours(isShared)).get(sharedNames[0] as string) === 1,
      10_000,
      'one channel',
    )

    await Promise.all([...publishers.map((p) => p.stop()), ...consumers.map((c) => c.stop())])
    await waitFor(async () => (await ours(isShared)).size === 0, 15_000, 'the shared connections to close')

    // Shared connections come back for a new user, and go again with it.
    const again = new Publisher({ kind: 'async' })
    await again.start()
    await again.sendMessageToQueue(queues[0] as string, 'again')
    assert.deepEqual([...(await ours(isShared)).keys()], [sharedNames[0]])
    await again.stop()
    await waitFor(async () => (await ours(isShared)).size === 0, 15_000, 'the shared connection to close')
  } finally {
    await Promise.all([...publishers.map((p) => p.stop()), ...consumers.map((c) => c.stop())])
    for (const q of queues) await deleteQueue(q)
  }
})

test('one explicit Connection shared by a publisher and a consumer: one TCP connection, two channels', async () => {
  const name = uniqueName('explicit-connection')
  const queue = uniqueName('explicit-shared')
  const connection = new Connection({ name })
  const publisher = new Publisher({ kind: 'async', connection })
  const received: string[] = []
  const consumer = recordingConsumer(queue, received, connection)
  try {
    await consumer.start()
    await publisher.start()
    await publisher.sendMessageToQueue(queue, 'hello')
    await waitFor(() => received.length === 1, 5_000, 'the message to be consumed')
    assert.deepEqual(received, ['hello'])
    assert.deepEqual([...(await ours((n) => n === name)).entries()], [[name, 2]])

    // Stopping its users closes their channels, not a connection the caller owns.
    await publisher.stop()
    await consumer.stop()
    assert.equal(connection.state, 'open')
    await waitFor(async () => (await ours((n) => n === name)).get(name) === 0, 10_000, 'no channel left')
    await connection.close()
    await waitFor(async () => (await ours((n) => n === name)).size === 0, 10_000, 'the connection to close')
  } finally {
    await publisher.stop()
    await consumer.stop()
    await connection.close()
    await deleteQueue(queue)
  }
})
