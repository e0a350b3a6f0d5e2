// A stale ack. A task is still running (or a message handled via callback is
// still unsettled) when the broker force-closes the consumer's connection (320). The broker requeues
// the message and lapinmq recovers at once: a new connection, a new channel, the message redelivered
// on it with delivery tag 1 — the very tag the dead channel had given it. The late ack must be
// dropped (counted in consumer.staleSettles), never sent on the new channel: there it would ack the
// redelivered copy behind its task's back, or fail with PRECONDITION_FAILED - unknown delivery tag.
// The redelivered copy is then acked once, and the queue ends empty.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  Connection,
  Consumer,
  type LapinError,
  type Logger,
  type Message,
  MessageStatus,
  Publisher,
} from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import {
  assertCleanBrokerLog,
  declarePrivateQueue,
  drainPrivateQueue,
  eventually,
  outcomeOf,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'

const node = usePrivateBroker()

/** A logger that keeps the messages lapinmq logs at warn level (e.g. a consumer channel reopening). */
/** Records the info and warning lines (a channel closed with its connection is logged at info). */
function recordingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = []
  const noop = (): void => {}
  return {
    logger: {
      debug: noop,
      info: (_obj, msg) => warnings.push(msg ?? ''),
      warn: (_obj, msg) => warnings.push(msg ?? ''),
      error: noop,
    },
    warnings,
  }
}

/** Publishes one message with lapinmq on a connection of its own; its outcome goes into the ledger. */
async function publishOne(ledger: Ledger, queue: string, id: string): Promise<void> {
  const connection = new Connection({ url: node.broker.url, name: `${queue}-publish` })
  const publisher = new Publisher({ kind: 'sync', connection })
  ledger.attempt(id)
  await publisher.sendMessageToQueue(queue, id, { messageId: id }).then(
    () => ledger.outcome(id, 'confirmed'),
    (err: unknown) => ledger.outcome(id, outcomeOf(err)),
  )
  await publisher.stop()
  await connection.close()
}

/** What staleAckSetup() returns: the test's queue, ledger and connection, and what that connection reported. */
interface StaleAckSetup {
  queue: string
  connectionName: string
  ledger: Ledger
  connection: Connection
  /** Set once the connection emitted 'disconnected'. */
  link: { disconnected: boolean }
  warnings: string[]
  errors: LapinError[]
}

/** Declares `queue` and opens a connection named `connectionName` that records its warnings, drops and errors. */
async function staleAckSetup(queue: string, connectionName: string): Promise<StaleAckSetup> {
  const ledger = new Ledger()
  await declarePrivateQueue(node.broker.url, queue)
  const { logger, warnings } = recordingLogger()
  const connection = new Connection({ url: node.broker.url, name: connectionName, logger })
  const link = { disconnected: false }
  connection.on('disconnected', () => {
    link.disconnected = true
  })
  const errors: LapinError[] = []
  connection.on('error', (e) => errors.push(e))
  return { queue, connectionName, ledger, connection, link, warnings, errors }
}

/**
 * Checks the end state shared by both cases: the ack was dropped once, the message came back
 * redelivered on a new channel and was acked there (the queue is empty, nothing comes a third
 * time), the consumer channel was reopened exactly once, the broker shows one consumer and the
 * connection and consumer emitted no error.
 */
async function assertRecoveredAndAckedOnce(
  setup: StaleAckSetup,
  options: { consumer: Consumer; deliveries: Message[]; label: string },
): Promise<void> {
  const { queue, warnings, ledger } = setup
  const { consumer, deliveries } = options
  assert.ok(
    await eventually(async () => {
      const m = await node.broker.queueMessages(queue)
      return m.ready === 0 && m.unacked === 0
    }, 10_000),
    'the queue is empty: the redelivered copy was acked',
  )
  await sleep(500) // a wrongly sent ack would have closed the channel by now; a third delivery would be here
  const consumers = (await node.broker.listConsumers()).filter((c) => c.queue === queue)
  await consumer.stop()
  ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))
  const report = ledger.print(options.label)
  process.stderr.write(
    `  staleSettles ${consumer.staleSettles}; deliveries ${deliveries.map((m) => `channel ${m.channelId} tag ${m.deliveryTag} redelivered ${m.redelivered}`).join(', ')}\n`,
  )

  assert.equal(consumer.staleSettles, 1, 'exactly the late ack was dropped')
  assert.equal(deliveries.length, 2, 'delivered twice: before the fault and once after')
  const [first, second] = deliveries as [Message, Message]
  assert.equal(first.redelivered, false)
  assert.equal(second.redelivered, true, 'the broker redelivered it')
  assert.notEqual(second.channelId, first.channelId, 'redelivered on the recovered channel')
  assert.equal(
    second.deliveryTag,
    first.deliveryTag,
    'with the same delivery tag: a stale ack sent there would hit it',
  )
  assert.ok(first.settled && second.settled)
  assert.equal(
    warnings.filter((w) => /consumer channel closed/.test(w)).length,
    1,
    'the channel reopened once',
  )
  assert.deepEqual(
    consumers.map((c) => c.connectionName),
    [setup.connectionName],
    'one consumer, on the recovered connection',
  )
  // One message, delivered twice after one fault: the in-flight window (1) × faults (1).
  ledger.assertSound({ maxDuplicated: 1 })
  assert.equal(report.outcomes.confirmed, 1)
  assert.equal(report.remaining, 0)
  await assertCleanBrokerLog(node.broker)
  assert.deepEqual(setup.errors, [])
}

test('a task that returns SUCCESS after its channel died: the ack is dropped, the message comes back and is acked once', async () => {
  const setup = await staleAckSetup('stale-ack.success', 'stale-ack-success')
  const { queue, connectionName, ledger, connection, link, errors } = setup

  const deliveries: Message[] = []
  let staleAt: number | undefined
  let staleTaskReturned = false
  let taskStarted = false
  const consumer: Consumer = new Consumer({
    queueName: queue,
    connection,
    taskFunction: async (message) => {
      deliveries.push(message)
      ledger.delivered(String(message.properties.messageId), { redelivered: message.redelivered, queue })
      if (message.redelivered) return MessageStatus.SUCCESS
      taskStarted = true
      // About 1.5 s of work, during which the connection is killed. To make the late ack as dangerous
      // as it gets, the task also waits until the redelivered copy sits on the new channel (with
      // concurrency 1 it waits for this task's slot), so that a tag-1 ack there would take it.
      await sleep(1_500)
      await eventually(() => link.disconnected && consumer.unsettled === 1, 30_000)
      staleAt = consumer.staleSettles
      staleTaskReturned = true
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('error', (e) => errors.push(e))
  await consumer.start()
  await publishOne(ledger, queue, 'stale-success-1')
  assert.ok(await eventually(() => taskStarted, 10_000), 'the slow task started')
  assert.equal(
    await node.broker.closeConnections(connectionName),
    1,
    'the consumer connection was force-closed',
  )
  assert.ok(await eventually(() => staleTaskReturned, 30_000), 'the slow task finished')
  assert.equal(staleAt, 0)
  assert.ok(link.disconnected)

  await assertRecoveredAndAckedOnce(setup, {
    consumer,
    deliveries,
    label: 'stale ack: SUCCESS after the connection was killed',
  })
  await connection.close()
})

test('HANDLED_VIA_CALLBACK, then message.ack() after the channel died: dropped, redelivered, acked once', async () => {
  const setup = await staleAckSetup('stale-ack.callback', 'stale-ack-callback')
  const { queue, connectionName, ledger, connection, link, errors } = setup

  const deliveries: Message[] = []
  const consumer = new Consumer({
    queueName: queue,
    connection,
    taskFunction: (message) => {
      deliveries.push(message)
      ledger.delivered(String(message.properties.messageId), { redelivered: message.redelivered, queue })
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  consumer.on('error', (e) => errors.push(e))
  await consumer.start()
  await publishOne(ledger, queue, 'stale-callback-1')
  assert.ok(await eventually(() => deliveries.length === 1, 10_000), 'delivered')
  const first = deliveries[0] as Message
  assert.equal(first.settled, false)

  assert.equal(
    await node.broker.closeConnections(connectionName),
    1,
    'the consumer connection was force-closed',
  )
  // The redelivered copy arrives on the recovered channel while the first is still unsettled.
  assert.ok(await eventually(() => deliveries.length === 2, 30_000), 'redelivered after recovery')
  assert.ok(link.disconnected)
  const second = deliveries[1] as Message
  assert.equal(consumer.unsettled, 1, 'only the redelivered copy counts as unsettled')

  first.ack() // late: its channel is gone
  assert.equal(consumer.staleSettles, 1, 'the late ack was dropped')
  first.ack() // idempotent: nothing more happens
  assert.equal(consumer.staleSettles, 1)
  second.ack()
  assert.equal(consumer.staleSettles, 1, 'the ack of the redelivered copy was sent')
  assert.equal(consumer.unsettled, 0)

  await assertRecoveredAndAckedOnce(setup, {
    consumer,
    deliveries,
    label: 'stale ack: HANDLED_VIA_CALLBACK, late message.ack()',
  })
  await connection.close()
})

test('a task that finishes while its channel is closing (broker cancelled the consumer): the ack is dropped, the consumer goes on', async () => {
  // Deleting the queue makes the broker cancel the consumer; lapinmq then closes that channel and
  // starts over. A task that returns during the close handshake settles on a channel that amqplib
  // no longer lets send ('Channel closing'). The settle must be dropped like any stale one, not
  // thrown: thrown, it would skip the end of the task loop, so the consumer would count a task
  // running forever and, with concurrency 1, never run another one.
  const queue = 'stale-ack.cancelled'
  const connectionName = 'stale-ack-cancelled'
  const ledger = new Ledger()
  await declarePrivateQueue(node.broker.url, queue)
  const connection = new Connection({ url: node.broker.url, name: connectionName })
  let release: () => void = () => {}
  const cancelled = new Promise<void>((resolve) => {
    release = resolve
  })
  const errors: LapinError[] = []
  const deliveries: Message[] = []
  const consumer = new Consumer({
    queueName: queue,
    connection,
    taskFunction: async (message) => {
      deliveries.push(message)
      ledger.delivered(String(message.properties.messageId), { redelivered: message.redelivered, queue })
      if (deliveries.length === 1) await cancelled
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('error', (e) => {
    errors.push(e)
    // Emitted as the cancel arrives, just before lapinmq closes the channel: the task resumes
    // (a microtask later) with its channel closing.
    if (e.code === 'CONSUMER_CANCELLED') release()
  })
  await consumer.start()
  await publishOne(ledger, queue, 'stale-cancelled-1')
  assert.ok(await eventually(() => deliveries.length === 1, 10_000), 'delivered')
  await connection.deleteQueue(queue) // the message goes with the queue
  assert.ok(await eventually(() => consumer.staleSettles === 1, 10_000), 'the ack was dropped')
  assert.ok(await eventually(() => consumer.running === 0, 10_000), 'the task slot is free again')

  // The consumer came back (queue declared again) and still works.
  await publishOne(ledger, queue, 'stale-cancelled-2')
  assert.ok(await eventually(() => deliveries.length === 2, 10_000), 'the next message is processed')
  assert.ok(
    await eventually(async () => {
      const m = await node.broker.queueMessages(queue)
      return m.ready === 0 && m.unacked === 0
    }, 10_000),
    'and acked',
  )
  await consumer.stop()
  ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))
  const report = ledger.print('stale ack: task finished while its channel was closing')
  assert.equal(consumer.staleSettles, 1)
  assert.deepEqual(
    errors.map((e) => e.code),
    ['CONSUMER_CANCELLED'],
  )
  ledger.assertSound()
  assert.equal(report.delivered, 2)
  await assertCleanBrokerLog(node.broker)
  await connection.close()
})
