// A graceful broker restart (`rabbitmqctl stop_app`, 5 s, `start_app`) on a private node deletes a
// non-durable exchange, queue and binding; the connection that declared them (connection.declare)
// declares them again as it recovers, before its publisher and consumer get it back: sends made
// during the outage wait, go out after recovery and route again, and the consumer's passive check
// of its queue (`declareQueue: false`) finds the queue back.
//
// What the ledger can honestly promise here: a non-durable queue loses the messages it holds when
// the broker stops, confirmed or not (a confirm says the queue took the message, not that it is
// on disk). So the run has two halves. Before the restart, 2,500 sends go out and the publishing
// pauses until every confirmed message has been delivered and acked and the queue is empty; then
// the broker stops, and the other 2,500 sends are made during the outage and after it (they wait
// in the publisher's buffer and go out once the topology is back). With nothing in the queue at
// the stop, every confirmed message must reach the consumer: lost 0.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import * as amqplib from 'amqplib'
import { Connection, Consumer, type LapinError, Publisher, type Topology } from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import {
  assertConsumerTookEveryConfirmed,
  assertEveryConfirmed,
  assertOneConsumer,
  assertSettledByDeadline,
  drainPrivateQueue,
  inFlightAt,
  nextDrop,
  peakUntil,
  recordingTask,
  recordStates,
  Traffic,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'

const node = usePrivateBroker()

const confirmTimeout = 30_000
/** Time a send may take past its deadline to settle (the expiry timer, a busy event loop). */
const slack = 2_000
const exchange = 'fault-topology.events'
const queue = 'fault-topology.billing'
const routingKey = 'invoice.created'
/** Declared with amqplib, not lapinmq: nothing declares it again, so its absence shows the restart dropped non-durable exchanges. */
const witness = 'fault-topology.witness'

const topology: Topology = {
  exchanges: [{ name: exchange, type: 'topic', durable: false }],
  queues: [{ name: queue, durable: false }],
  bindings: [{ exchange, queue, routingKey: 'invoice.*' }],
}

/** The node's exchanges and bindings of the default vhost, as `name:durable` and `source→destination:key`. */
async function brokerTopology(): Promise<{ exchanges: string[]; bindings: string[] }> {
  const exchanges = JSON.parse(
    (await node.broker.ctl('-q', 'list_exchanges', 'name', 'durable', '--formatter', 'json')) || '[]',
  ) as { name: string; durable: boolean }[]
  const bindings = JSON.parse(
    (await node.broker.ctl(
      '-q',
      'list_bindings',
      ...['source_name', 'destination_name', 'routing_key', '--formatter', 'json'],
    )) || '[]',
  ) as { source_name: string; destination_name: string; routing_key: string }[]
  return {
    exchanges: exchanges
      .filter((e) => e.name.startsWith('fault-topology'))
      .map((e) => `${e.name}:${e.durable}`)
      .sort(),
    bindings: bindings
      .filter((b) => b.source_name === exchange)
      .map((b) => `${b.source_name}→${b.destination_name}:${b.routing_key}`)
      .sort(),
  }
}

async function declareWitness(url: string): Promise<void> {
  const connection = await amqplib.connect(url)
  try {
    const channel = await connection.createChannel()
    await channel.assertExchange(witness, 'fanout', { durable: false })
  } finally {
    await connection.close()
  }
}

test('stop_app / start_app: a non-durable topology declared by lapinmq is back before publishing resumes; lost 0', async () => {
  const ledger = new Ledger()
  const connection = new Connection({
    url: node.broker.url,
    name: 'fault-topology',
    recovery: { initialDelay: 100, maxDelay: 2_000 },
  })
  const states = recordStates(connection)
  const connectionErrors: LapinError[] = []
  connection.on('error', (e) => connectionErrors.push(e))
  const consumerErrors: LapinError[] = []
  const publisherErrors: LapinError[] = []
  const publisher = new Publisher({ kind: 'async', connection, confirmTimeout, maxInFlight: 200 })
  publisher.on('error', (e) => publisherErrors.push(e))
  const delivered = new Set<string>()
  const consumer = new Consumer({
    queueName: queue,
    // Checked, not declared: only the connection's declaration brings the queue back.
    declareQueue: false,
    taskFunction: recordingTask(ledger, queue, delivered),
    concurrency: 10,
    connection,
  })
  consumer.on('error', (e) => consumerErrors.push(e))
  const traffic = new Traffic(ledger, publisher, queue, 'm', { exchange, routingKey })
  const outage = { from: 0, stopped: 0, to: 0, sendsInFlight: 0, unsettled: 0 }
  try {
    await connection.declare(topology)
    // Declared twice (kept once): the redeclare after recovery sends it once, without conflict.
    await connection.declare(topology)
    await declareWitness(node.broker.url)
    const before = await brokerTopology()
    assert.deepEqual(before, {
      exchanges: [`${exchange}:false`, `${witness}:false`],
      bindings: [`${exchange}→${queue}:invoice.*`],
    })
    await consumer.start()
    await publisher.start()

    // First half: sent, confirmed, and all taken by the consumer before the broker stops.
    await traffic.paced(2_500, 8_000)
    await assertSettledByDeadline(traffic, confirmTimeout + slack, confirmTimeout + slack)
    await assertConsumerTookEveryConfirmed(node.broker, queue, traffic, delivered)

    // The restart; the second half is sent from the moment the broker is stopped.
    const drop = nextDrop(connection)
    const unsettled = peakUntil(() => consumer.unsettled, drop)
    outage.from = performance.now()
    await node.broker.stopApp()
    outage.sendsInFlight = inFlightAt(traffic, await drop)
    outage.unsettled = await unsettled
    outage.stopped = performance.now()
    const restart = (async () => {
      await sleep(5_000)
      await node.broker.startApp()
      outage.to = performance.now()
    })()
    await traffic.paced(2_500, 10_000)
    await restart

    await assertSettledByDeadline(traffic, confirmTimeout + slack, confirmTimeout + slack)
    // Every send confirmed: none returned unroutable, none refused NOT_FOUND by a missing exchange.
    assertEveryConfirmed(traffic)
    const duringOutage = traffic.records.filter((r) => r.started >= outage.from && r.started <= outage.to)
    assert.ok(duringOutage.length > 1_000, `${duringOutage.length} sends during the outage`)
    await assertConsumerTookEveryConfirmed(node.broker, queue, traffic, delivered)

    // The topology is back, and only what lapinmq declared: the witness exchange is gone.
    assert.deepEqual(await brokerTopology(), {
      exchanges: [`${exchange}:false`],
      bindings: [`${exchange}→${queue}:invoice.*`],
    })
    const sequence = states.map((s) => s.state)
    assert.ok(sequence.includes('reconnecting'), `states: ${sequence.join(' → ')}`)
    assert.equal(connection.state, 'open')
    await assertOneConsumer(node.broker, queue, 'fault-topology')
    assert.deepEqual(connectionErrors, [], 'connection errors (a redeclare refused?)')
    assert.deepEqual(publisherErrors, [], 'publisher errors')

    await consumer.stop()
    ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))
    const report = ledger.print('non-durable topology, graceful restart (stop_app 5 s, start_app)')
    const reopenedAt = Math.round((states.findLast((s) => s.state === 'open')?.at ?? 0) - outage.to)
    process.stderr.write(
      `  stop_app took ${Math.round(outage.stopped - outage.from)} ms, outage ${Math.round(outage.to - outage.from)} ms; reopened ${reopenedAt} ms after start_app\n` +
        `  sends during the outage: ${duringOutage.length}; in flight at the drop: ${outage.sendsInFlight} sends, ${outage.unsettled} deliveries; ` +
        `consumer errors: ${consumerErrors.map((e) => e.code).join(', ') || 'none'}\n`,
    )
    ledger.assertSound({ maxDuplicated: outage.sendsInFlight + outage.unsettled })
    assert.equal(report.attempted, 5_000)
    assert.equal(report.outcomes.confirmed, 5_000)
    assert.equal(report.delivered, 5_000)
  } finally {
    await consumer.stop()
    await publisher.stop({ timeout: 1_000 })
    await connection.close()
  }
})

test('a redeclare the broker refuses after a recovery is an error event and a logger error; what comes after it is still declared; the connection is handed over', async () => {
  const name = 'fault-topology.changed'
  const other = 'fault-topology.after-the-refused'
  const logged: { fields: unknown; message: string }[] = []
  const logger = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: (fields: unknown, message: string) => logged.push({ fields, message }),
  }
  const connection = new Connection({
    url: node.broker.url,
    name: 'fault-topology-refused',
    recovery: { initialDelay: 100, maxDelay: 1_000 },
    logger,
  })
  const errors: LapinError[] = []
  connection.on('error', (e) => errors.push(e))
  const publisher = new Publisher({ kind: 'sync', connection })
  try {
    await connection.declare({
      queues: [
        { name, type: 'classic' },
        { name: other, durable: false },
      ],
      bindings: [{ exchange: 'amq.fanout', queue: other }],
    })
    // Meanwhile someone replaces the queue with a quorum queue of the same name.
    const admin = await amqplib.connect(node.broker.url)
    try {
      const channel = await admin.createChannel()
      await channel.deleteQueue(name)
      await channel.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
      // And deletes the next queue (its binding goes with it): the redeclare must bring both back.
      await channel.deleteQueue(other)
    } finally {
      await admin.close()
    }
    const reconnected = new Promise((resolve) => connection.once('connected', resolve))
    assert.equal(await node.broker.closeConnections('fault-topology-refused'), 1)
    await reconnected
    assert.equal(errors.length, 1, `errors: ${errors.map((e) => e.message).join('; ')}`)
    assert.equal(errors[0]?.code, 'PRECONDITION_FAILED')
    assert.match(
      errors[0]?.message ?? '',
      /could not declare queue 'fault-topology\.changed' \(topology\.queues\[0\]\): .*inequivalent arg 'x-queue-type'/,
    )
    assert.ok(
      logged.some((l) => /could not declare the topology again/.test(l.message)),
      JSON.stringify(logged),
    )
    // The refusal did not stop the rest: the queue after it and its binding are back.
    await publisher.sendMessage('amq.fanout', '', 'through the binding declared again')
    assert.equal((await connection.checkQueue(other)).messageCount, 1)
    // Handed over: publishing works on the recovered connection.
    await publisher.sendMessageToQueue(name, 'after the refused redeclare')
    assert.equal(connection.state, 'open')
  } finally {
    await publisher.stop({ timeout: 1_000 })
    await connection.close()
  }
})
