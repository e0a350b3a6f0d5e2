// A ConnectionPool on a real three-node RabbitMQ cluster (one LocalCluster for this file).
//
// A pool of 3 over the cluster's urls (default settings, random first URL) has one connection per
// node. A confirm-tied pipeline A → B on quorum queues (10,000 persistent messages) runs through
// it: the forwarder on connection #0, A's consumer on #1, B's on #2, as the pool places them.
// kill -9 of connection #0's node (B's leader too), restarted once the pipeline flows again: only
// #0 drops and reconnects, to a surviving node, and only the forwarder's channel moves with it;
// #1 and #2 keep their node, their TCP connection (same client port) and their consumers. Nothing
// lost, unexpected or hung, every A message acked through its B confirm, duplicates within what
// the kill found in flight.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Connection, ConnectionPool, type LapinError } from 'lapinmq'
import { useLocalCluster } from '../helpers/cluster.ts'
import { ConfirmTiedPipeline } from '../helpers/cluster-pipeline.ts'
import { declarePrivateQueue, eventually, ms, nextDrop, peakUntil } from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'
import type { PrivateBroker } from '../helpers/private-broker.ts'

const use = useLocalCluster()
const fileStarted = performance.now()

const total = 10_000
const concurrency = 20
const prefetch = 100
const forwardWindow = 100
const workMs = 5
const slowMs = 400
/** A messages acked before the kill. */
const killPoint = 3_000

/** What the broker shows of one pooled connection. */
interface Seen {
  node: number
  /** The client's port: a new TCP connection gets a new one. */
  peerPort: number
  /** Its channels in confirm mode (publishers). */
  publishers: number
  /** Consumers on its channels, by queue. */
  consumers: string[]
}

test('a pool of 3 over the cluster: one connection per node; kill -9 of one node moves only that connection; a pipeline A → B of 10,000 messages through it loses nothing', async () => {
  const { cluster } = use
  const started = performance.now()
  const index = (node: PrivateBroker): number => cluster.nodes.indexOf(node)
  const nodeOfAddress = (hostPort: string | undefined): number =>
    cluster.nodes.findIndex((n) => hostPort?.endsWith(`:${n.port}`) === true)
  const names = ['pool#0', 'pool#1', 'pool#2']

  const pool = new ConnectionPool({ size: 3, urls: cluster.urls, name: 'pool' })
  const errors: LapinError[] = []
  const connected: { i: number; at: number; node: string; recovered: boolean }[] = []
  const disconnects = [0, 0, 0]
  pool.connections.forEach((c, i) => {
    c.on('error', (e) => errors.push(e))
    c.on('connected', ({ node, recovered }) => connected.push({ i, at: performance.now(), node, recovered }))
    c.on('disconnected', () => {
      disconnects[i] = (disconnects[i] ?? 0) + 1
    })
  })

  let source: Connection | undefined
  let pipeline: ConfirmTiedPipeline | undefined
  try {
    // One connection per node, as the cluster sees it and as each connection tells.
    await pool.connect()
    const atStart = await Promise.all(names.map(async (n) => index(await cluster.nodeOfConnection(n))))
    const all = (await cluster.nodesOfConnections(/^pool#/)).map(index)
    process.stderr.write(`  pool#0..2 on nodes ${atStart.join(', ')}\n`)
    assert.equal(all.length, 3, 'the cluster lists the 3 pooled connections')
    assert.deepEqual([...atStart].sort(), [0, 1, 2], 'one pooled connection per node')
    assert.deepEqual(
      pool.connections.map((c) => nodeOfAddress(c.node)),
      atStart,
      'each connection names the node it is on',
    )

    const [victim, nodeA, live] = atStart.map((i) => cluster.nodes[i]) as [
      PrivateBroker,
      PrivateBroker,
      PrivateBroker,
    ]
    // B's leader on the node to be killed (the forwarder's), A's on consumer A's node.
    const queueA = 'cluster.pool.A'
    const queueB = 'cluster.pool.B'
    await declarePrivateQueue(nodeA.url, queueA, { 'x-queue-type': 'quorum' })
    await declarePrivateQueue(victim.url, queueB, { 'x-queue-type': 'quorum' })
    assert.equal(await cluster.leaderOf(queueB), victim, "B's leader is on the node to be killed")

    const ledger = new Ledger()
    // The source only fills A, outside the pool, on a node never killed.
    source = new Connection({ urls: [live.url], name: 'pool-source' })
    source.on('error', (e) => errors.push(e))
    const p = new ConfirmTiedPipeline({
      ledger,
      queueA,
      queueB,
      total,
      source,
      forward: pool,
      consume: pool,
      concurrency,
      prefetch,
      forwardWindow,
      workMs,
      slowMs,
    })
    pipeline = p
    // Placed in order on the least-loaded connection: forwarder #0, consumer A #1, consumer B #2.
    await p.start()

    /** Each pooled connection as the broker shows it, read through a node never killed. */
    const seen = async (): Promise<Seen[]> => {
      const [connections, channels, consumers] = await Promise.all([
        live.listConnections(),
        live.listChannels(),
        live.listConsumers(),
      ])
      return names.map((name) => {
        const rows = connections.filter((c) => c.name === name)
        assert.equal(rows.length, 1, `one broker connection named ${name}: ${JSON.stringify(rows)}`)
        const row = rows[0] as (typeof rows)[number]
        return {
          node: cluster.nodes.findIndex((n) => row.address.endsWith(`:${n.port}`)),
          peerPort: row.peerPort,
          publishers: channels.filter((c) => c.connectionName === name && c.confirm).length,
          consumers: consumers
            .filter((c) => c.connectionName === name)
            .map((c) => c.queue)
            .sort(),
        }
      })
    }
    const before = await seen()
    process.stderr.write(`  before the kill: ${JSON.stringify(before)}\n`)
    assert.deepEqual(
      before.map((s) => [s.node, s.publishers, s.consumers]),
      [
        [atStart[0], 1, []],
        [atStart[1], 0, [queueA]],
        [atStart[2], 0, [queueB]],
      ],
      'the forwarder on #0, A’s consumer on #1, B’s on #2, each connection on its own node',
    )
    assert.deepEqual(pool.loads, [1, 1, 1], 'one publisher or consumer per pooled connection')

    const feeding = p.feed()
    assert.ok(await eventually(() => p.acked >= killPoint, 60_000), `the pipeline reached ${killPoint} acks`)
    p.slow = true
    const dropped = nextDrop(pool.connections[0] as Connection)
    const inFlight = peakUntil(() => p.forwarder.unconfirmed + p.consumerB.unsettled, dropped)
    const deliveredBBefore = p.deliveredB.size
    const killedAt = performance.now()
    await victim.kill9()
    const dropAt = await dropped
    const inFlightAtKill = await inFlight
    const moved = await cluster.waitConnectionOn('pool#0', (n) => n !== victim, 30_000)
    const reconnect = connected.find((c) => c.i === 0 && c.at > killedAt)
    const confirmAfter = (): number | undefined =>
      p.forwardConfirmedAt.find((t) => t > (reconnect?.at ?? killedAt))
    await eventually(() => confirmAfter() !== undefined, 30_000)
    const firstConfirm = confirmAfter()
    const whileDown = await seen()
    p.slow = false

    const restartAt = performance.now()
    await victim.restart()
    await cluster.waitRunning(3)
    const restartMs = Math.round(performance.now() - restartAt)
    await feeding
    const drained = await p.drained(90_000)
    const settledMs = Math.round(performance.now() - started)
    const atEnd = await seen()

    await p.stop()
    const { leftA, leftB } = await p.drainQueues(live.url)
    const report = ledger.print(`pool of 3, pipeline A → B, ${total} messages, kill -9 of pool#0's node`)
    process.stderr.write(
      `  kill -9 node ${index(victim)} (pool#0, B's leader) at ${Math.round(killedAt - started)} ms, ${deliveredBBefore} in B: ` +
        `drop seen ${ms(dropAt, killedAt)}, pool#0 reconnected ${ms(reconnect?.at, killedAt)} to node ${nodeOfAddress(reconnect?.node)}, ` +
        `first forward confirm after ${ms(firstConfirm, killedAt)}; restart ${restartMs} ms\n` +
        `  while down: ${JSON.stringify(whileDown)}\n  at end: ${JSON.stringify(atEnd)}\n` +
        `  disconnects ${JSON.stringify(disconnects)}, connected ${JSON.stringify(connected.map((c) => [c.i, c.node, c.recovered]))}\n` +
        `  forwards ${p.forwards}, failed ${p.describeFailures()}; duplicated ${report.duplicated} (in flight at the kill ${inFlightAtKill}); all settled ${settledMs} ms after the start\n`,
    )

    assert.ok(drained, `pipeline did not settle: ${p.describe()}`)
    ledger.assertSound({ maxDuplicated: inFlightAtKill })
    p.assertComplete(report, leftA, leftB)
    assert.deepEqual(errors, [], 'no connection gave up')
    assert.ok(deliveredBBefore < total, 'the kill hit a flowing pipeline')

    // Only #0 dropped; it reconnected once, to a surviving node; #1 and #2 never reconnected.
    assert.deepEqual(disconnects, [1, 0, 0], 'only the killed node’s connection dropped')
    assert.deepEqual(
      connected.map((c) => [c.i, c.recovered]).sort(),
      [
        [0, false],
        [0, true],
        [1, false],
        [2, false],
      ],
      'only the killed node’s connection connected again',
    )
    assert.equal(moved, cluster.nodes[whileDown[0]?.node ?? -1], 'the broker sees #0 where it says it is')
    assert.notEqual(whileDown[0]?.node, index(victim), 'pool#0 ended on a surviving node')
    assert.notEqual(nodeOfAddress(reconnect?.node), index(victim), 'pool#0 reconnected to a surviving node')
    // #1 and #2: same node, same TCP connection (client port), same consumers, through the kill
    // and after the restart; the forwarder's channel moved with #0 and nothing else did.
    for (const after of [whileDown, atEnd]) {
      assert.deepEqual(
        after.slice(1).map((s) => [s.node, s.peerPort, s.publishers, s.consumers]),
        before.slice(1).map((s) => [s.node, s.peerPort, s.publishers, s.consumers]),
        'pool#1 and pool#2 kept their node, TCP connection and channels',
      )
      assert.deepEqual(
        [after[0]?.publishers, after[0]?.consumers],
        [1, []],
        'the forwarder moved with pool#0',
      )
      assert.notEqual(after[0]?.peerPort, before[0]?.peerPort, 'pool#0 is a new TCP connection')
    }
    assert.deepEqual(pool.loads, [0, 0, 0])
  } finally {
    await pipeline?.stopQuietly()
    await Promise.allSettled([pool.close(), source?.close()])
    process.stderr.write(
      `  file ${Math.round(performance.now() - fileStarted)} ms (cluster start ${use.startMs} ms)\n`,
    )
  }
})
