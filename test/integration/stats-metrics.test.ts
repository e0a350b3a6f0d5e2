// With an OpenTelemetry SDK registered, the metrics a reader collects are the figures stats() gives:
// observable counters read the same fields, and the duration histograms hold as many records.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { metrics } from '@opentelemetry/api'
import { type DataPoint, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { Connection, Consumer, MessageStatus, Publisher } from 'lapinmq'
import { uniqueName, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

/** A reader the test collects from when it wants. */
class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const reader = new TestReader()
const provider = new MeterProvider({ readers: [reader] })
// Before any publisher or consumer starts: instruments are made from the provider then in place.
metrics.setGlobalMeterProvider(provider)

const { consumers, queues } = cleanedUpAfterFile()
const connectionName = uniqueName('metrics-conn')
const connection = new Connection({ name: connectionName })
before(() => connection.connect())
after(async () => {
  for (const c of consumers) await c.stop({ timeout: 1000 })
  await connection.close()
  await provider.shutdown()
})

type Point = DataPoint<unknown> & { attributes: Record<string, unknown> }

/** Every data point collected, by instrument name. */
async function collect(): Promise<Map<string, Point[]>> {
  const { resourceMetrics, errors } = await reader.collect()
  assert.deepEqual(errors, [])
  const byName = new Map<string, Point[]>()
  for (const scope of resourceMetrics.scopeMetrics) {
    if (scope.scope.name !== 'lapinmq') continue
    for (const metric of scope.metrics) {
      byName.set(metric.descriptor.name, metric.dataPoints as Point[])
    }
  }
  return byName
}

/** The value of `name`'s point whose attributes include `match`. */
function pointValue(points: Map<string, Point[]>, name: string, match: Record<string, unknown>): unknown {
  const found = (points.get(name) ?? []).filter((p) =>
    Object.entries(match).every(([k, v]) => p.attributes[k] === v),
  )
  assert.equal(found.length, 1, `one point of ${name} for ${JSON.stringify(match)}, found ${found.length}`)
  return found[0]?.value
}

test('the collected metrics equal stats() for a publisher, a consumer and their connection', async () => {
  const queue = uniqueName('metrics-q')
  queues.push(queue)
  const publisher = new Publisher({ kind: 'async', connection })
  const consumer = new Consumer({
    queueName: queue,
    connection,
    concurrency: 2,
    requeueBackoff: false,
    taskFunction: (message) => {
      const body = message.body.toString()
      if (body === 'drop') return MessageStatus.FAIL_DO_NOT_RETRY
      if (body === 'again' && !message.redelivered) return MessageStatus.FAIL_RETRY_LATER
      return MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  await consumer.start()
  await publisher.start()
  const sends = [
    ...Array.from({ length: 20 }, (_, i) => publisher.sendMessageToQueue(queue, `ok ${i}`)),
    publisher.sendMessageToQueue(queue, 'drop'),
    publisher.sendMessageToQueue(queue, 'again'),
    publisher.sendMessageToQueue(uniqueName('nowhere'), 'unroutable').catch(() => {}),
  ]
  await Promise.all(sends)
  await waitFor(() => consumer.stats().delivered === 23 && consumer.unsettled === 0, 10_000, 'all settled')
  await sleep(50)

  const points = await collect()
  const p = publisher.stats()
  const c = consumer.stats()
  const onConnection = { 'lapinmq.connection.name': connectionName, 'messaging.system': 'rabbitmq' }
  assert.equal(p.confirmed, 22)
  assert.equal(p.returned, 1)
  assert.equal(pointValue(points, 'messaging.client.sent.messages', onConnection), p.published)
  assert.equal(pointValue(points, 'lapinmq.publisher.sends', onConnection), p.sends)
  for (const [outcome, value] of [
    ['confirmed', p.confirmed],
    ['returned', p.returned],
    ['nacked', p.nacked],
    ['timed_out', p.timedOut],
    ['failed', p.failed],
  ] as const) {
    assert.equal(
      pointValue(points, 'lapinmq.publisher.outcomes', { ...onConnection, 'lapinmq.outcome': outcome }),
      value,
      outcome,
    )
  }
  assert.equal(pointValue(points, 'lapinmq.publisher.in_flight', onConnection), 0)
  const publishDuration = pointValue(points, 'messaging.client.operation.duration', onConnection) as {
    count: number
  }
  assert.equal(publishDuration.count, p.confirmLatency.count)

  const ofQueue = { ...onConnection, 'messaging.destination.name': queue }
  assert.equal(c.delivered, 23)
  assert.equal(pointValue(points, 'messaging.client.consumed.messages', ofQueue), c.delivered)
  assert.equal(pointValue(points, 'lapinmq.consumer.redelivered', ofQueue), c.redelivered)
  for (const [outcome, value] of [
    ['ack', c.acked],
    ['reject', c.rejected],
    ['requeue', c.requeued],
  ] as const) {
    assert.equal(
      pointValue(points, 'lapinmq.consumer.settles', { ...ofQueue, 'lapinmq.outcome': outcome }),
      value,
      outcome,
    )
  }
  assert.deepEqual([c.acked, c.rejected, c.requeued], [21, 1, 1])
  assert.equal(pointValue(points, 'lapinmq.consumer.stale_settles', ofQueue), c.staleSettles)
  assert.equal(pointValue(points, 'lapinmq.consumer.running', ofQueue), c.running)
  const processDuration = pointValue(points, 'messaging.process.duration', ofQueue) as { count: number }
  assert.equal(processDuration.count, c.taskDuration.count)
  assert.equal(processDuration.count, 23)

  const k = connection.stats()
  assert.equal(pointValue(points, 'lapinmq.connection.reconnects', onConnection), k.reconnects)
  assert.equal(pointValue(points, 'lapinmq.connection.blocked', onConnection), 0)

  // Stopped: no longer observed (the SDK keeps the last cumulative value): a send refused after stop() is not seen.
  await publisher.stop()
  await publisher.sendMessageToQueue(queue, 'too late').catch(() => {})
  assert.equal(publisher.stats().sends, p.sends + 1)
  const later = await collect()
  assert.equal(pointValue(later, 'lapinmq.publisher.sends', onConnection), p.sends)
})
