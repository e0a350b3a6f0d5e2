// A MeterProvider registered after lapinmq has started: the API has no proxy for metrics, so the
// instruments lapinmq made from the no-op provider are made again from the new one when the next
// publisher, consumer or connection starts. Counters read the fields stats() reads (all figures);
// the histograms record from then on. A process of its own: the global provider is set once.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { metrics } from '@opentelemetry/api'
import { type DataPoint, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { Connection, Consumer, MessageStatus, Publisher } from 'lapinmq'
import { uniqueName, waitFor } from '../helpers/broker.ts'
import { cleanedUpAfterFile } from '../helpers/fixtures.ts'

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const { consumers, queues } = cleanedUpAfterFile()
const reader = new TestReader()
const provider = new MeterProvider({ readers: [reader] })
after(() => provider.shutdown())

type Point = DataPoint<unknown> & { attributes: Record<string, unknown> }

test('a MeterProvider registered after a publisher started is used from the next start on', async () => {
  const connectionName = uniqueName('metrics-late-conn')
  const connection = new Connection({ name: connectionName })
  const queue = uniqueName('metrics-late-q')
  queues.push(queue)
  const publisher = new Publisher({ kind: 'async', connection, topology: { queues: [{ name: queue }] } })
  await publisher.start()
  await Promise.all(Array.from({ length: 5 }, (_, i) => publisher.sendMessageToQueue(queue, `early ${i}`)))

  assert.ok(metrics.setGlobalMeterProvider(provider), 'the provider is registered')
  let done = 0
  const consumer = new Consumer({
    queueName: queue,
    connection,
    taskFunction: () => {
      done++
      return MessageStatus.SUCCESS
    },
  })
  consumers.push(consumer)
  await consumer.start()
  await Promise.all(Array.from({ length: 7 }, (_, i) => publisher.sendMessageToQueue(queue, `late ${i}`)))
  try {
    await check()
  } finally {
    await publisher.stop()
    await consumer.stop()
    await connection.close()
  }

  async function check(): Promise<void> {
    await waitFor(
      () => done === 12 && consumer.unsettled === 0 && consumer.stats().taskDuration.count === 12,
      10_000,
      'all settled',
    )

    const { resourceMetrics, errors } = await reader.collect()
    assert.deepEqual(errors, [])
    const points = new Map<string, Point[]>()
    for (const scope of resourceMetrics.scopeMetrics) {
      if (scope.scope.name !== 'lapinmq') continue
      for (const metric of scope.metrics) points.set(metric.descriptor.name, metric.dataPoints as Point[])
    }
    const one = (name: string, match: Record<string, unknown>): unknown => {
      const found = (points.get(name) ?? []).filter((p) =>
        Object.entries(match).every(([k, v]) => p.attributes[k] === v),
      )
      assert.equal(
        found.length,
        1,
        `one point of ${name} for ${JSON.stringify(match)}, found ${found.length}`,
      )
      return found[0]?.value
    }
    const onConnection = { 'lapinmq.connection.name': connectionName }
    const p = publisher.stats()
    assert.equal(p.confirmed, 12)
    // Observable counters: every figure, those from before the provider included.
    assert.equal(one('messaging.client.sent.messages', onConnection), 12)
    assert.equal(one('lapinmq.publisher.outcomes', { ...onConnection, 'lapinmq.outcome': 'confirmed' }), 12)
    assert.equal(
      one('messaging.client.consumed.messages', { ...onConnection, 'messaging.destination.name': queue }),
      12,
    )
    // Histograms: the durations recorded once the instruments were made again.
    assert.equal(p.confirmLatency.count, 12)
    assert.equal((one('messaging.client.operation.duration', onConnection) as { count: number }).count, 7)
    const ofQueue = { ...onConnection, 'messaging.destination.name': queue }
    assert.equal((one('messaging.process.duration', ofQueue) as { count: number }).count, 12)
    assert.equal(one('lapinmq.connection.reconnects', onConnection), 0)
  }
})
