// Transport faults through an in-process TCP proxy (test/helpers/tcp-proxy.ts) in front of the
// shared broker: only the proxy's own connections are reset or silenced, the broker is not touched.
//   (a) five TCP resets during an A → B pipeline of 5,000 messages (acks of A tied to B confirms)
//   (b) a black hole (no bytes either way) with a 1 s heartbeat
//   (c) messages in doubt at a reset: rejected with `republish: false`, republished by default
//   (d) sends made while disconnected: a full buffer rejects at once or waits; deadlines hold
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import * as amqplib from 'amqplib'
import { Connection, Consumer, type LapinError, MessageStatus, Publisher } from 'lapinmq'
import {
  brokerUrl,
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  listConnections,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { connectionPair, watchConnection } from '../helpers/fault-setup.ts'
import {
  eventually,
  inFlightAt,
  inOrder,
  ms,
  nextDrop,
  outcomeOf,
  peakUntil,
  recordingTask,
  Traffic,
} from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'
import { TcpProxy } from '../helpers/tcp-proxy.ts'

after(closeAdmin)

/** The messageIds left in a queue of the shared broker, taken out. */
async function drainIds(queue: string): Promise<string[]> {
  return (await drainQueue(queue)).map((m) => String(m.properties.messageId))
}

test('(a) five TCP resets during an A → B pipeline of 5,000 messages: every id ends in B, A acked only after B confirms', async () => {
  const total = 5_000
  const cuts = 5
  const concurrency = 50
  const maxInFlight = 100
  const a = uniqueName('proxy-pipeline-a')
  const b = uniqueName('proxy-pipeline-b')
  const ledger = new Ledger()
  await declareQueue(a)
  await declareQueue(b)
  const proxy = await TcpProxy.start()
  const recovery = { initialDelay: 50, maxDelay: 500 }
  const pubName = uniqueName('pipeline-pub')
  const conName = uniqueName('pipeline-con')
  const { pubConnection, conConnection, errors } = connectionPair(
    { url: proxy.url(), recovery },
    { pub: pubName, con: conName },
  )
  const publisher = new Publisher({
    kind: 'async',
    connection: pubConnection,
    maxInFlight,
    confirmTimeout: 30_000,
  })
  const acked = new Set<string>()
  const downstream = { pending: 0, confirmed: 0, failed: new Map<string, number>() }
  const consumer = new Consumer({
    queueName: a,
    concurrency,
    connection: conConnection,
    taskFunction: (message) => {
      const id = String(message.properties.messageId)
      ledger.delivered(id, { redelivered: message.redelivered, queue: a })
      downstream.pending++
      publisher
        .sendMessageToQueue(b, id, {
          messageId: id,
          callbacks: {
            // Called by lapinmq once B's confirm is in: only then is A acked.
            ackCallback: () => {
              ledger.confirmedDownstream(id, b)
              message.ack()
              ledger.ackedSource(id)
              acked.add(id)
            },
            nackCallback: () => message.rejectRetry(),
          },
        })
        .then(
          () => downstream.confirmed++,
          (err: LapinError) => downstream.failed.set(err.code, (downstream.failed.get(err.code) ?? 0) + 1),
        )
        .finally(() => downstream.pending--)
      return MessageStatus.HANDLED_VIA_CALLBACK
    },
  })
  consumer.on('error', (e) => errors.push(e))
  const started = performance.now()
  try {
    // Fill A directly (not through the proxy); every message confirmed.
    const fillConnection = new Connection({ url: brokerUrl, name: uniqueName('pipeline-fill') })
    const filler = new Publisher({ kind: 'async', connection: fillConnection })
    const fill = new Traffic(ledger, filler, a, 'p')
    for (let i = 0; i < total; i++) fill.send()
    assert.deepEqual(await fill.settled(30_000), [], 'the fill did not settle')
    assert.equal(fill.failed.length, 0)
    await filler.stop()
    await fillConnection.close()
    const filled = performance.now()

    await publisher.start()
    await consumer.start()
    // A reset at a random point in each sixth of the run (never after the last message).
    const at = Array.from({ length: cuts }, (_, k) =>
      Math.round(((k + 1) * total) / (cuts + 1) + (Math.random() - 0.5) * 400),
    )
    const cutAt: { acked: number; at: number; inFlight: number }[] = []
    const done = (): boolean => acked.size === total && consumer.unsettled === 0 && downstream.pending === 0
    await waitFor(
      () => {
        const next = at[cutAt.length]
        if (next !== undefined && acked.size >= next) {
          // What the reset can make arrive twice in B: A's unacked deliveries (redelivered and
          // forwarded again: at most the prefetch, which is the concurrency; acks already sent may
          // still be in a buffer, so the consumer's own unsettled count is not enough) and B's
          // unconfirmed publishes (republished). The cut is synchronous.
          const inFlight = concurrency + publisher.unconfirmed
          proxy.cut()
          cutAt.push({ acked: acked.size, at: performance.now(), inFlight })
        }
        return cutAt.length === cuts && done()
      },
      90_000,
      'the pipeline to finish',
    )
    await waitFor(async () => (await queueCount(a)) === 0 && done(), 10_000, 'A to be empty')
    const finished = performance.now()
    // After all the resets: one connection each at the broker, with one channel each.
    await waitFor(
      async () => {
        const mine = (await listConnections()).filter((c) => c.name === pubName || c.name === conName)
        return mine.length === 2 && mine.every((c) => c.channels === 1)
      },
      10_000,
      'one connection with one channel each',
    )
    const stale = consumer.staleSettles
    await consumer.stop({ timeout: 5_000 })
    await publisher.stop({ timeout: 5_000 })
    const inB = await drainIds(b)
    ledger.finalContents(b, inB)
    ledger.finalContents(a, await drainIds(a))

    process.stderr.write(
      [
        '',
        `(a) pipeline of ${total}: fill ${Math.round(filled - started)} ms, pipeline ${Math.round(finished - filled)} ms, ` +
          `resets at ${cutAt.map((c) => `${c.acked} acked (${c.inFlight} in flight)`).join(', ')}; ${proxy.accepted} proxied connections in all`,
        `  B publishes: confirmed ${downstream.confirmed}, failed ${JSON.stringify(Object.fromEntries(downstream.failed))}, ` +
          `pending ${downstream.pending}; stale A settles dropped ${stale}; ${inB.length} messages in B (${new Set(inB).size} ids)`,
      ].join('\n'),
    )
    const report = ledger.print(`A → B pipeline, ${cuts} TCP resets`)
    ledger.assertSound({ maxDuplicated: cutAt.reduce((sum, c) => sum + c.inFlight, 0) })
    assert.equal(cutAt.length, cuts)
    assert.equal(report.ackedBeforeConfirm, 0)
    assert.equal(report.ackedSource, total)
    const missing = fill.confirmedIds.filter((id) => !inB.includes(id))
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} ids not in B`)
    assert.equal(downstream.pending, 0, 'B publishes never settled')
    assert.deepEqual(
      errors.map((e) => e.code),
      [],
      'no error event',
    )
  } finally {
    await consumer.stop({ timeout: 1_000 }).catch(() => undefined)
    await publisher.stop({ timeout: 1_000 }).catch(() => undefined)
    await pubConnection.close().catch(() => undefined)
    await conConnection.close().catch(() => undefined)
    await proxy.close()
    await deleteQueue(a)
    await deleteQueue(b)
  }
})

test('(b) black hole with a 1 s heartbeat: noticed within ~3 s, nothing hangs, recovers once the path is back', async () => {
  const queue = uniqueName('proxy-black-hole')
  const heartbeat = 1
  const connectionTimeout = 2_000
  const confirmTimeout = 15_000
  const blackHoleMs = 5_000
  const recovery = { initialDelay: 100, maxDelay: 1_000 }
  const ledger = new Ledger()
  await declareQueue(queue)
  const proxy = await TcpProxy.start()
  const { pubConnection, conConnection, pubStates, conStates, errors } = connectionPair(
    { url: proxy.url(), heartbeat, connectionTimeout, recovery },
    { pub: uniqueName('black-hole-pub'), con: uniqueName('black-hole-con') },
  )
  const pubWatch = watchConnection(pubConnection)
  const conWatch = watchConnection(conConnection)
  const failedAttempts: string[] = []
  pubConnection.on('reconnecting', ({ error }) => failedAttempts.push(error.message))
  const publisher = new Publisher({ kind: 'async', connection: pubConnection, confirmTimeout })
  const delivered = new Set<string>()
  const deliveredAt: number[] = []
  const record = recordingTask(ledger, queue, delivered)
  const consumer = new Consumer({
    queueName: queue,
    concurrency: 5,
    connection: conConnection,
    taskFunction: (message) => {
      deliveredAt.push(performance.now())
      return record(message)
    },
  })
  consumer.on('error', (e) => errors.push(e))
  const traffic = new Traffic(ledger, publisher, queue)
  try {
    await consumer.start()
    await publisher.start()
    const publishing = new AbortController()
    const steady = traffic.paced(100_000, 1_000_000, publishing.signal) // 100 a second
    await sleep(2_000)

    const pubDrop = nextDrop(pubConnection)
    const unsettledPeak = peakUntil(() => consumer.unsettled, nextDrop(conConnection))
    const pausedAt = performance.now()
    proxy.pause('both')
    // A pause holds the bytes of connections accepted later too: a new connection hangs as well.
    const probe = await amqplib.connect(`${proxy.url()}?heartbeat=1`, { timeout: 1_000 }).then(
      async (c) => {
        await c.close()
        return 'connected'
      },
      (e: unknown) => String(e),
    )
    await sleep(blackHoleMs - (performance.now() - pausedAt))
    const stateInHole = { pub: pubConnection.state, con: conConnection.state }
    const resumedAt = performance.now()
    proxy.resume()
    const back = await eventually(
      () => pubConnection.state === 'open' && conConnection.state === 'open',
      connectionTimeout + recovery.maxDelay + 5_000,
    )
    const recoveredAt = performance.now()
    assert.ok(back, `not open again: publishing ${pubConnection.state}, consuming ${conConnection.state}`)
    await sleep(2_000)
    publishing.abort()
    await steady
    const lastSent = performance.now()
    const slack = 1_000
    const hung = await traffic.settled(confirmTimeout + slack - (performance.now() - lastSent))
    const late = traffic.records.filter(
      (r) => (r.settled ?? Number.POSITIVE_INFINITY) - r.started > confirmTimeout + slack,
    )
    const confirmed = traffic.confirmedIds
    await eventually(() => confirmed.every((id) => delivered.has(id)), 10_000)
    await consumer.stop({ timeout: 5_000 })
    await publisher.stop({ timeout: 5_000 })
    ledger.finalContents(queue, await drainIds(queue))

    const detectedPub = pubWatch.disconnects.find((d) => d.at >= pausedAt)
    const detectedCon = conWatch.disconnects.find((d) => d.at >= pausedAt)
    const reconnectedPub = pubWatch.connects.find((t) => t >= resumedAt)
    const reconnectedCon = conWatch.connects.find((t) => t >= resumedAt)
    const slowest = Math.max(...traffic.records.map((r) => (r.settled ?? 0) - r.started))
    process.stderr.write(
      [
        '',
        `(b) black hole ${blackHoleMs} ms, heartbeat ${heartbeat} s, connectionTimeout ${connectionTimeout} ms`,
        `  noticed: publishing ${ms(detectedPub?.at, pausedAt)} (${detectedPub?.error?.message ?? '-'}), consuming ` +
          `${ms(detectedCon?.at, pausedAt)} (${detectedCon?.error?.message ?? '-'})`,
        `  a new connection during the pause: ${probe}; publishing connect attempts that failed: ${failedAttempts.length} ` +
          `(${[...new Set(failedAttempts)].join('; ')}); states in the hole: ${JSON.stringify(stateInHole)}`,
        `  reconnected after resume: publishing ${ms(reconnectedPub, resumedAt)}, consuming ${ms(reconnectedCon, resumedAt)}`,
        `  sends ${traffic.records.length}, failed ${traffic.failed.length}, slowest settled after ${Math.round(slowest)} ms; ` +
          `deliveries after the recovery ${deliveredAt.filter((t) => t > recoveredAt).length}`,
      ].join('\n'),
    )
    // What the drop can make arrive twice: the sends unsettled when the publishing connection
    // dropped (republished) and the deliveries unsettled when the consuming one did (redelivered).
    const inFlight = inFlightAt(traffic, await pubDrop) + (await unsettledPeak)
    process.stderr.write(`\n  in flight at the drops: ${inFlight}`)
    ledger.print('black hole 5 s, heartbeat 1 s')
    ledger.assertSound({ maxDuplicated: inFlight })
    assert.deepEqual(hung, [], 'sends never settled')
    assert.deepEqual(late, [], 'sends settled past their deadline')
    // amqplib checks once a heartbeat for two silent intervals: 2 to 3 s, plus timer slack.
    const limit = 3 * heartbeat * 1_000 + 750
    assert.ok(
      detectedPub && detectedPub.at - pausedAt <= limit,
      `publishing noticed: ${ms(detectedPub?.at, pausedAt)}`,
    )
    assert.ok(
      detectedCon && detectedCon.at - pausedAt <= limit,
      `consuming noticed: ${ms(detectedCon?.at, pausedAt)}`,
    )
    assert.notEqual(probe, 'connected', 'a new connection got through the paused proxy')
    assert.deepEqual(stateInHole, { pub: 'reconnecting', con: 'reconnecting' })
    const bound = connectionTimeout + recovery.maxDelay + 1_000
    assert.ok(
      reconnectedPub && reconnectedPub - resumedAt <= bound,
      `publishing back: ${ms(reconnectedPub, resumedAt)}`,
    )
    assert.ok(
      reconnectedCon && reconnectedCon - resumedAt <= bound,
      `consuming back: ${ms(reconnectedCon, resumedAt)}`,
    )
    assert.ok(
      inOrder(
        pubStates.map((s) => s.state),
        ['open', 'reconnecting', 'open'],
      ),
    )
    assert.ok(
      inOrder(
        conStates.map((s) => s.state),
        ['open', 'reconnecting', 'open'],
      ),
    )
    assert.ok(
      deliveredAt.some((t) => t > recoveredAt),
      'nothing delivered after the recovery',
    )
    assert.deepEqual(
      errors.map((e) => e.code),
      [],
      'no error event',
    )
  } finally {
    proxy.resume()
    await consumer.stop({ timeout: 1_000 }).catch(() => undefined)
    await publisher.stop({ timeout: 1_000 }).catch(() => undefined)
    await pubConnection.close().catch(() => undefined)
    await conConnection.close().catch(() => undefined)
    await proxy.close()
    await deleteQueue(queue)
  }
})

for (const republish of [false, true]) {
  test(`(c) republish: ${republish}: messages unconfirmed at a reset are ${republish ? 'confirmed after recovery' : "rejected with 'CONNECTION_CLOSED'"}`, async () => {
    const queue = uniqueName(`proxy-republish-${republish}`)
    const inDoubt = 50
    const ledger = new Ledger()
    await declareQueue(queue)
    const proxy = await TcpProxy.start()
    const connection = new Connection({
      url: proxy.url(),
      name: uniqueName('republish'),
      recovery: { initialDelay: 50, maxDelay: 500 },
    })
    const publisher = new Publisher({ kind: 'async', connection, republish, confirmTimeout: 10_000 })
    const traffic = new Traffic(ledger, publisher, queue)
    try {
      await publisher.start()
      traffic.send()
      assert.deepEqual(await traffic.settled(5_000), [])
      // The broker takes the messages but its confirms are held back: they are in doubt.
      proxy.pause('toClient')
      for (let i = 0; i < inDoubt; i++) traffic.send()
      await waitFor(async () => (await queueCount(queue)) === 1 + inDoubt, 10_000, 'the broker to have them')
      assert.equal(publisher.unconfirmed, inDoubt)
      const cutAt = performance.now()
      proxy.cut()
      proxy.resume()
      const hung = await traffic.settled(10_000)
      const settledAfter = Math.max(
        ...traffic.records.map((r) => (r.settled ?? Number.POSITIVE_INFINITY) - cutAt),
      )
      await connection.connect() // recovered (the republish case has waited for it already)
      traffic.send() // the publisher works after the reset
      assert.deepEqual(await traffic.settled(5_000), [])
      await publisher.stop()
      const inQueue = await drainIds(queue)
      ledger.finalContents(queue, inQueue)

      const codes = traffic.failed.map((r) => (r.error as LapinError).code)
      process.stderr.write(
        `\n(c) republish ${republish}: ${inDoubt} in doubt at the reset, all settled ${Math.round(settledAfter)} ms after it; ` +
          `failed ${codes.length} (${[...new Set(codes)].join(', ') || '-'}); ${inQueue.length} messages in the queue`,
      )
      ledger.print(`republish: ${republish}, one reset with ${inDoubt} unconfirmed`)
      ledger.assertSound({ maxDuplicated: republish ? inDoubt : 0 })
      assert.deepEqual(hung, [])
      if (republish) {
        assert.equal(traffic.failed.length, 0, `failed: ${codes.join(', ')}`)
        assert.equal(ledger.report().confirmed, inDoubt + 2)
      } else {
        assert.deepEqual(codes, Array(inDoubt).fill('CONNECTION_CLOSED'))
        assert.ok(settledAfter < 1_000, `rejected ${Math.round(settledAfter)} ms after the reset`)
        // In doubt means in doubt: the broker had them all.
        assert.equal(ledger.report().recovered, inDoubt)
      }
    } finally {
      proxy.resume()
      await publisher.stop({ timeout: 1_000 }).catch(() => undefined)
      await connection.close().catch(() => undefined)
      await proxy.close()
      await deleteQueue(queue)
    }
  })
}

test("(d) while disconnected: a full buffer rejects 'BUFFER_FULL' at once; past its deadline a send rejects 'CONFIRM_TIMEOUT'", async () => {
  const queue = uniqueName('proxy-buffer')
  const maxBuffered = 5
  const shortTimeout = 1_500
  const outageMs = 3_500
  const ledger = new Ledger()
  await declareQueue(queue)
  const proxy = await TcpProxy.start()
  const connection = new Connection({
    url: proxy.url(),
    name: uniqueName('buffer'),
    connectionTimeout: 1_000,
    recovery: { initialDelay: 50, maxDelay: 500 },
  })
  const errors: LapinError[] = []
  connection.on('error', (e) => errors.push(e))
  const rejecting = new Publisher({ kind: 'async', connection, maxBuffered, whenBufferFull: 'reject' })
  const timingOut = new Publisher({ kind: 'async', connection, confirmTimeout: shortTimeout })
  const traffic = {
    rejecting: new Traffic(ledger, rejecting, queue, 'reject'),
    timingOut: new Traffic(ledger, timingOut, queue, 'timeout'),
  }
  const all = Object.values(traffic)
  try {
    for (const p of [rejecting, timingOut]) await p.start()
    for (const t of all) t.send()
    for (const t of all) assert.deepEqual(await t.settled(5_000), [])

    // Disconnected, and kept so: the reset closes the connection, the pause holds every new one
    // in its handshake until connectionTimeout.
    proxy.pause('both')
    const cutAt = performance.now()
    proxy.cut()
    await waitFor(() => connection.state === 'reconnecting', 2_000, 'reconnecting')
    await sleep(50) // the channels' close callbacks run after the connection's

    for (let i = 0; i < maxBuffered; i++) traffic.rejecting.send()
    const full = [traffic.rejecting.send(), traffic.rejecting.send()]
    const expiring = [traffic.timingOut.send(), traffic.timingOut.send(), traffic.timingOut.send()]
    await sleep(20)
    const whileOut = { rejecting: rejecting.waiting, state: connection.state }
    const fullOutcome = full.map((r) => [
      (r.error as LapinError | undefined)?.code,
      Math.round((r.settled ?? 0) - r.started),
    ])

    await sleep(outageMs - (performance.now() - cutAt))
    const expiredOutcome = expiring.map((r) => [
      (r.error as LapinError | undefined)?.code,
      r.settled === undefined ? undefined : Math.round(r.settled - r.started),
    ])
    const stillWaiting = traffic.rejecting.pending.length
    const resumedAt = performance.now()
    proxy.resume()
    await connection.connect()
    const reconnected = performance.now()
    const hung = (await Promise.all(all.map((t) => t.settled(10_000)))).flat()
    traffic.timingOut.send() // works again after the outage
    assert.deepEqual(await traffic.timingOut.settled(5_000), [])
    for (const p of [rejecting, timingOut]) await p.stop()
    ledger.finalContents(queue, await drainIds(queue))

    process.stderr.write(
      [
        '',
        `(d) outage ${outageMs} ms: while out ${JSON.stringify(whileOut)}; over-full sends (code, ms): ${JSON.stringify(fullOutcome)}`,
        `  past ${shortTimeout} ms (code, ms): ${JSON.stringify(expiredOutcome)}; reconnected ${ms(reconnected, resumedAt)} after resume`,
        `  outcomes: ${all.map((t) => `${t.records[0]?.id.split('-')[0]}: ${t.confirmedIds.length} confirmed, ${t.failed.map((r) => outcomeOf(r.error)).join(' ') || 'none failed'}`).join('; ')}`,
      ].join('\n'),
    )
    ledger.print('sends while disconnected (maxBuffered 5)')
    ledger.assertSound()
    assert.deepEqual(hung, [])
    assert.deepEqual(whileOut, { rejecting: maxBuffered, state: 'reconnecting' })
    for (const [code, took] of fullOutcome) {
      assert.equal(code, 'BUFFER_FULL')
      assert.ok((took as number) < 50, `BUFFER_FULL after ${took} ms`)
    }
    assert.equal(stillWaiting, maxBuffered, 'buffered sends settled during the outage')
    for (const [code, took] of expiredOutcome) {
      assert.equal(code, 'CONFIRM_TIMEOUT')
      assert.ok(
        (took as number) >= shortTimeout - 5 && (took as number) < shortTimeout + 500,
        `CONFIRM_TIMEOUT after ${took} ms`,
      )
    }
    // Everything buffered is confirmed after the recovery.
    assert.equal(traffic.rejecting.confirmedIds.length, 1 + maxBuffered)
    assert.equal(traffic.timingOut.confirmedIds.length, 2)
    assert.deepEqual(
      errors.map((e) => e.code),
      [],
      'no error event',
    )
  } finally {
    proxy.resume()
    for (const p of [rejecting, timingOut]) await p.stop({ timeout: 1_000 }).catch(() => undefined)
    await connection.close().catch(() => undefined)
    await proxy.close()
    await deleteQueue(queue)
  }
})
