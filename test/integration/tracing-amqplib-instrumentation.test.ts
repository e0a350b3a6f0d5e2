// With OpenTelemetry's instrumentation-amqplib registered before amqplib loads, lapinmq's channels
// go around its wrappers: each send and delivery has lapinmq's span only (none doubled, none from
// the instrumentation), the traceparent a message carries is lapinmq's, and no span stays open.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { after, test } from 'node:test'
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { parentOf, registerTestTracing } from '../helpers/otel.ts'

const tracing = registerTestTracing()
registerInstrumentations({ instrumentations: [new AmqplibInstrumentation()] })
// Loaded after the instrumentation: amqplib is patched as it loads.
const { Connection, Consumer, MessageStatus, Publisher } = await import('lapinmq')
const { brokerUrl, closeAdmin, declareQueue, deleteQueue, uniqueName, waitFor } = await import(
  '../helpers/broker.ts'
)

const q = uniqueName('trace.amqplib-instr')

after(async () => {
  await deleteQueue(q).catch(() => undefined)
  await closeAdmin()
})

test('instrumentation-amqplib registered: one publish and one process span per message, none open', async () => {
  const require = createRequire(import.meta.url)
  // By path: amqplib's exports map hides its lib/ files.
  const channelModel = require(join(dirname(require.resolve('amqplib')), 'lib/channel_model.js')) as {
    Channel: { prototype: Record<string, { __wrapped?: boolean }> }
  }
  assert.equal(channelModel.Channel.prototype.publish?.__wrapped, true, 'amqplib is instrumented')
  assert.equal(channelModel.Channel.prototype.consume?.__wrapped, true)
  await declareQueue(q)
  const connection = new Connection({ url: brokerUrl, name: 'tracing-amqplib-instrumentation' })
  const publisher = new Publisher({ kind: 'async', connection })
  const seen: string[] = []
  const consumer = new Consumer({
    queueName: q,
    connection,
    taskFunction: (message) => {
      seen.push(String(message.headers.traceparent))
      return MessageStatus.SUCCESS
    },
  })
  await publisher.start()
  await consumer.start()
  const count = 20
  await Promise.all(Array.from({ length: count }, (_, i) => publisher.sendMessageToQueue(q, `m${i}`)))
  await waitFor(() => seen.length === count, 10_000, 'every message consumed')
  // Before any channel closes (the instrumentation ends its leftover spans then).
  await waitFor(() => tracing.openSpans.open.size === 0, 5_000, 'no span left open').catch(() => undefined)
  const open = [...tracing.openSpans.open.values()].map((s) => `${s.instrumentationScope.name}: ${s.name}`)
  assert.deepEqual(open, [], 'no span left open')
  await consumer.stop()
  await publisher.stop()
  await connection.close()

  const spans = tracing.spans()
  const foreign = spans.filter((s) => s.instrumentationScope.name !== 'lapinmq').map((s) => s.name)
  assert.deepEqual(foreign, [], 'no span of the instrumentation')
  const byTrace = new Map<string, ReadableSpan[]>()
  for (const span of spans) {
    const id = span.spanContext().traceId
    byTrace.set(id, [...(byTrace.get(id) ?? []), span])
  }
  assert.equal(byTrace.size, count)
  for (const [traceId, pair] of byTrace) {
    assert.deepEqual(pair.map((s) => s.name).sort(), [`process ${q}`, `publish ${q}`])
    const publish = pair.find((s) => s.name.startsWith('publish')) as ReadableSpan
    const processed = pair.find((s) => s.name.startsWith('process')) as ReadableSpan
    assert.equal(parentOf(processed), publish.spanContext().spanId)
    assert.ok(seen.includes(`00-${traceId}-${publish.spanContext().spanId}-01`), 'the header is lapinmq’s')
  }
})
