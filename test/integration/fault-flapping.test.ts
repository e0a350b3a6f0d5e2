// Flapping. A publisher (async, a steady stream of sends) and a consumer run
// on two named connections to a private node; for 60 s the broker force-closes (320) each of the
// two every 0.2-2 s (random), side by side. Kills land anywhere: mid-stream, mid-recovery, while a
// channel reopens or a consumer registers again. Afterwards, once recovery has completed, the broker
// shows the same connections, channels and consumers as before, the connections, the consumer and
// the process have the same listeners, the heap after GC is about where it was, no socket is left
// behind, and the ledger is sound (nothing lost, nothing hung).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { Connection, Consumer, type LapinError, MessageStatus, Publisher } from 'lapinmq'
import { usePrivateBroker } from '../helpers/fault-setup.ts'
import { declarePrivateQueue, drainPrivateQueue, eventually, outcomeOf } from '../helpers/fault-traffic.ts'
import { Ledger } from '../helpers/ledger.ts'

const node = usePrivateBroker()

const flapMs = 60_000
const interval = { min: 200, max: 2_000 }
/** Sends a second, steady. */
const rate = 100
const maxInFlight = 100
const concurrency = 5
const confirmTimeout = 30_000
const names = { publish: 'flap-publish', consume: 'flap-consume' } as const
type Kind = keyof typeof names
/** Heap growth allowed across the whole run, after GC (the ledger itself keeps ~7,000 ids). */
const maxHeapGrowth = 20 * 1024 * 1024

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc()
    await sleep(20)
  }
  return process.memoryUsage().heapUsed
}

/** Every event an emitter has listeners for, with how many. */
function listeners(emitter: NodeJS.EventEmitter): Record<string, number> {
  return Object.fromEntries(
    emitter
      .eventNames()
      .map((e) => [String(e), emitter.listenerCount(e)] as const)
      .sort(),
  )
}

/** What the broker shows of our two connections: each with its channels, and the consumers. */
async function brokerResources(queue: string): Promise<{
  connections: string[]
  channels: string[]
  consumers: string[]
}> {
  const ours = (name: string): boolean => name === names.publish || name === names.consume
  const [connections, channels, consumers] = await Promise.all([
    node.broker.listConnections(),
    node.broker.listChannels(),
    node.broker.listConsumers(),
  ])
  return {
    connections: connections
      .filter((c) => ours(c.name))
      .map((c) => `${c.name} (${c.channels} channels)`)
      .sort(),
    channels: channels
      .filter((c) => ours(c.connectionName))
      .map(
        (c) => `${c.connectionName}: confirm ${c.confirm}, prefetch ${c.prefetch}, consumers ${c.consumers}`,
      )
      .sort(),
    consumers: consumers
      .filter((c) => c.queue === queue)
      .map((c) => `${c.queue} @ ${c.connectionName}, prefetch ${c.prefetch}`)
      .sort(),
  }
}

/** Open sockets and timers of this process (libuv handles), by type. */
function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1
  return counts
}

test('a forced close every 0.2-2 s for 60 s: afterwards the same connections, channels, consumers, listeners and memory', async () => {
  const started = performance.now()
  const seed = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31))
  const queue = 'flap.q'
  await declarePrivateQueue(node.broker.url, queue)
  const ledger = new Ledger()
  const connections = {
    publish: new Connection({ url: node.broker.url, name: names.publish }),
    consume: new Connection({ url: node.broker.url, name: names.consume }),
  }
  const disconnects = { publish: 0, consume: 0 }
  const errors: LapinError[] = []
  for (const kind of ['publish', 'consume'] as const) {
    connections[kind].on('disconnected', () => disconnects[kind]++)
    connections[kind].on('error', (e) => errors.push(e))
  }
  const publisher = new Publisher({
    kind: 'async',
    connection: connections.publish,
    maxInFlight,
    confirmTimeout,
  })
  const delivered = new Set<string>()
  const consumer = new Consumer({
    queueName: queue,
    concurrency,
    connection: connections.consume,
    taskFunction: async (message) => {
      const id = String(message.properties.messageId)
      ledger.delivered(id, { redelivered: message.redelivered, queue })
      delivered.add(id)
      await sleep(2)
      return MessageStatus.SUCCESS
    },
  })
  consumer.on('error', (e) => errors.push(e))
  await Promise.all([publisher.start(), consumer.start()])

  // The steady stream: `rate` sends a second, each after waiting for room, while `sending`.
  let sending = false
  let attempted = 0
  let settled = 0
  const startStream = async (): Promise<void> => {
    sending = true
    const t0 = performance.now()
    for (let i = 0; sending; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now()
      if (wait > 1) await sleep(wait)
      await publisher.waitForRoom()
      const id = `f-${attempted}`
      ledger.attempt(id)
      attempted++
      publisher.sendMessageToQueue(queue, id, { messageId: id }).then(
        () => {
          settled++
          ledger.outcome(id, 'confirmed')
        },
        (err: unknown) => {
          settled++
          ledger.outcome(id, outcomeOf(err))
        },
      )
    }
  }
  /** Every send settled and every confirmed message consumed (or, bounded, what is left of it). */
  const quiet = (timeoutMs: number): Promise<boolean> =>
    eventually(
      () =>
        settled === attempted &&
        publisher.unconfirmed + publisher.waiting === 0 &&
        consumer.unsettled === 0 &&
        consumer.running === 0 &&
        delivered.size >= ledger.report().confirmed,
      timeoutMs,
    )

  // Before: a few seconds of traffic (everything warmed up), then a quiet moment to measure.
  const stream = startStream()
  await sleep(3_000)
  sending = false
  await stream
  assert.ok(await quiet(30_000), 'quiet before the fault')
  const resourcesBefore = await brokerResources(queue)
  const listenersBefore = {
    publish: listeners(connections.publish),
    consume: listeners(connections.consume),
    consumer: listeners(consumer),
    process: listeners(process),
  }
  const handlesBefore = activeResources()
  const heapBefore = await heapAfterGc()

  // The flapping, with the stream running.
  const stream2 = startStream()
  let random = seed
  const next = (): number => {
    random = (Math.imul(random, 1103515245) + 12345) >>> 0
    return random / 2 ** 32
  }
  const closes = { publish: { calls: 0, closed: 0 }, consume: { calls: 0, closed: 0 } }
  const ctlErrors: unknown[] = []
  // One flapper per connection: a forced close every 0.2-2 s (random, counted from the start of the
  // previous one; if rabbitmqctl — ~1-2 s to list, then close — is still at it, right after). The
  // two flappers run side by side. Two closes at once on one connection would race on its pid.
  const flapStart = performance.now()
  const flapper = async (kind: Kind): Promise<void> => {
    let due = flapStart
    for (;;) {
      due += interval.min + next() * (interval.max - interval.min)
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      if (performance.now() - flapStart >= flapMs) return
      due = Math.max(due, performance.now())
      closes[kind].calls++
      try {
        closes[kind].closed += await node.broker.closeConnections(names[kind], 'flapping')
      } catch (err) {
        ctlErrors.push(err)
      }
    }
  }
  const disconnectTimes: number[] = []
  const onDisconnect = (): void => {
    disconnectTimes.push(performance.now())
  }
  // What each close can make arrive twice, at its highest since the previous close of the same
  // connection: the publisher's unconfirmed sends (republished) or the consumer's unsettled
  // deliveries (redelivered). Summed over every close, it bounds the duplicates.
  const inFlight = {
    publish: { peak: 0, count: () => publisher.unconfirmed, atDrops: 0 },
    consume: { peak: 0, count: () => consumer.unsettled, atDrops: 0 },
  }
  const sampleInFlight = (): void => {
    for (const w of Object.values(inFlight)) w.peak = Math.max(w.peak, w.count())
  }
  const sampler = setInterval(sampleInFlight, 1)
  const onDrop = {
    publish: (): void => {
      sampleInFlight()
      inFlight.publish.atDrops += inFlight.publish.peak
      inFlight.publish.peak = 0
    },
    consume: (): void => {
      sampleInFlight()
      inFlight.consume.atDrops += inFlight.consume.peak
      inFlight.consume.peak = 0
    },
  }
  connections.publish.on('disconnected', onDisconnect)
  connections.consume.on('disconnected', onDisconnect)
  connections.publish.on('disconnected', onDrop.publish)
  connections.consume.on('disconnected', onDrop.consume)
  await Promise.all([flapper('publish'), flapper('consume')])
  connections.publish.off('disconnected', onDisconnect)
  connections.consume.off('disconnected', onDisconnect)
  connections.publish.off('disconnected', onDrop.publish)
  connections.consume.off('disconnected', onDrop.consume)
  clearInterval(sampler)
  const gaps = disconnectTimes.slice(1).map((t, i) => t - (disconnectTimes[i] as number))
  const gapStats = {
    min: Math.round(Math.min(...gaps)),
    mean: Math.round(gaps.reduce((x, y) => x + y, 0) / gaps.length),
    max: Math.round(Math.max(...gaps)),
  }
  const flapEnded = performance.now()
  const disconnectsDuringFlap = { ...disconnects }

  // Recovery: traffic goes on for a moment, then stops; everything settles; the broker's counts
  // come back to those before (polled, bounded).
  await sleep(2_000)
  sending = false
  await stream2
  const quietAfter = await quiet(confirmTimeout + 10_000)
  const recoveredMs = Math.round(performance.now() - flapEnded)
  let resourcesAfter = await brokerResources(queue)
  const resourcesFirstSeen = resourcesAfter
  await eventually(async () => {
    if (JSON.stringify(resourcesAfter) === JSON.stringify(resourcesBefore)) return true
    resourcesAfter = await brokerResources(queue)
    return false
  }, 30_000)
  const settledMs = Math.round(performance.now() - flapEnded)
  const listenersAfter = {
    publish: listeners(connections.publish),
    consume: listeners(connections.consume),
    consumer: listeners(consumer),
    process: listeners(process),
  }
  const handlesAfter = activeResources()
  const heapAfter = await heapAfterGc()
  const heapGrowth = heapAfter - heapBefore

  await consumer.stop()
  await publisher.stop()
  await Promise.all([connections.publish.close(), connections.consume.close()])
  ledger.finalContents(queue, await drainPrivateQueue(node.broker.url, queue))

  // What the test's own bookkeeping of that many messages weighs (the ledger and the delivered set
  // grew during the run too): the same records for as many fresh ids, measured the same way.
  const heapProbe0 = await heapAfterGc()
  const probe = { ledger: new Ledger(), delivered: new Set<string>() }
  for (let i = 0; i < attempted; i++) {
    const id = `f-${1_000_000 + i}`
    probe.ledger.attempt(id)
    probe.ledger.outcome(id, 'confirmed')
    probe.ledger.delivered(id, { redelivered: false, queue })
    probe.delivered.add(id)
  }
  const bookkeeping = (await heapAfterGc()) - heapProbe0
  assert.equal(probe.delivered.size, attempted)

  const report = ledger.print(`flapping for ${flapMs / 1000} s (seed ${seed})`)
  const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MB`
  // Per close of the publish connection, at most its unconfirmed sends are republished; per close of
  // the consume connection, at most its unacked deliveries are redelivered.
  const maxDuplicated = inFlight.publish.atDrops + inFlight.consume.atDrops
  process.stderr.write(
    `  closes (rabbitmqctl calls/connections closed/disconnects seen): publish ${closes.publish.calls}/${closes.publish.closed}/${disconnectsDuringFlap.publish}, ` +
      `consume ${closes.consume.calls}/${closes.consume.closed}/${disconnectsDuringFlap.consume}; rabbitmqctl errors ${ctlErrors.length}; ` +
      `ms between closes: min ${gapStats.min}, mean ${gapStats.mean}, max ${gapStats.max}\n` +
      `  quiet ${recoveredMs} ms and broker counts back ${settledMs} ms after the flapping; duplicated bound ${maxDuplicated} (publish ${inFlight.publish.atDrops}, consume ${inFlight.consume.atDrops}); ` +
      `stale settles ${consumer.staleSettles}; errors ${errors.length}\n` +
      `  heap after GC: before ${mb(heapBefore)}, after ${mb(heapAfter)}, growth ${mb(heapGrowth)}, ` +
      `of which the test's own bookkeeping of ${attempted} messages ~${mb(bookkeeping)}\n` +
      `  broker before: ${JSON.stringify(resourcesBefore)}\n  broker after:  ${JSON.stringify(resourcesAfter)}\n` +
      `  broker at first look after: ${JSON.stringify(resourcesFirstSeen)}\n` +
      `  listeners before: ${JSON.stringify(listenersBefore)}\n  listeners after:  ${JSON.stringify(listenersAfter)}\n` +
      `  handles before: ${JSON.stringify(handlesBefore)}\n  handles after:  ${JSON.stringify(handlesAfter)}\n` +
      `  took ${Math.round((performance.now() - started) / 1000)} s\n`,
  )

  assert.ok(quietAfter, `not quiet after the flapping: ${attempted - settled} sends unsettled`)
  ledger.assertSound({ maxDuplicated })
  assert.equal(report.lost, 0)
  assert.equal(report.hung, 0)
  assert.deepEqual(ctlErrors, [])
  assert.deepEqual(errors, [], 'no connection or consumer gave up')
  // The flapping really happened, to both connections, and the client saw every close.
  assert.ok(
    closes.publish.closed >= 5 && closes.consume.closed >= 5,
    'both connections were closed repeatedly',
  )
  assert.equal(disconnectsDuringFlap.publish, closes.publish.closed)
  assert.equal(disconnectsDuringFlap.consume, closes.consume.closed)

  assert.deepEqual(resourcesAfter, resourcesBefore, 'broker connections, channels and consumers as before')
  assert.deepEqual(listenersAfter, listenersBefore, 'listener counts as before')
  assert.equal(handlesAfter.TCPSocketWrap ?? 0, handlesBefore.TCPSocketWrap ?? 0, 'no socket left behind')
  assert.ok(heapGrowth < maxHeapGrowth, `heap grew by ${mb(heapGrowth)}`)
})
