// Tracing without a broker: span names after the semantic conventions, the no-op provider seen as
// "no tracing" (no span, no header), headers injected only when a propagator is registered.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { propagation, trace } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { LapinError } from '../../src/errors.ts'
import { loadOtel } from '../../src/telemetry/otel.ts'
import {
  endSendSpan,
  processDestination,
  sendDestination,
  serverOf,
  startProcessSpan,
  startSendSpan,
  tracer,
} from '../../src/telemetry/tracing.ts'

test('destination names follow the RabbitMQ conventions', () => {
  assert.equal(sendDestination('logs', 'warning'), 'logs:warning')
  assert.equal(sendDestination('', 'jobs'), 'jobs')
  assert.equal(sendDestination('logs', ''), 'logs')
  assert.equal(sendDestination('', ''), 'amq.default')
  assert.equal(processDestination('logs', 'warning', 'my_queue'), 'logs:warning:my_queue')
  assert.equal(processDestination('', 'jobs', 'jobs'), 'jobs')
  assert.equal(processDestination('logs', '', 'q'), 'logs:q')
})

test('server.address and server.port from host:port, IPv6 too', () => {
  assert.deepEqual(serverOf('rabbit.local:5672'), { address: 'rabbit.local', port: 5672 })
  assert.deepEqual(serverOf('[::1]:5671'), { address: '::1', port: 5671 })
})

test('no SDK: no tracer and no span; an SDK: spans, and headers only with a propagator', async () => {
  assert.ok(await loadOtel())
  assert.equal(tracer(), undefined)
  assert.equal(startSendSpan('', 'q', {}, 1, '127.0.0.1:5672'), undefined)
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  trace.setGlobalTracerProvider(provider)
  try {
    assert.ok(tracer())
    // No propagator registered: a span, but nothing to put in the headers (the send stays plain).
    const quiet = startSendSpan('', 'q', { headers: { a: 1 } }, 1, undefined)
    assert.ok(quiet)
    assert.equal(quiet.headers, undefined)
    endSendSpan(quiet.span, undefined)
    propagation.setGlobalPropagator(new W3CTraceContextPropagator())
    const sent = startSendSpan('ex', 'rk', { headers: { a: 1 }, messageId: 'm1' }, 3, 'h:1')
    assert.ok(sent?.headers)
    assert.equal(sent.headers.a, 1)
    assert.match(String(sent.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    endSendSpan(sent.span, new LapinError('UNROUTABLE', 'no route'))
    const delivery = {
      exchange: 'ex',
      routingKey: 'rk',
      deliveryTag: 7,
      body: Buffer.from('abc'),
      properties: { headers: { traceparent: Buffer.from(String(sent.headers.traceparent)) } },
    }
    const processed = startProcessSpan(delivery, 'q', 'h:1')
    assert.ok(processed)
    processed.end('requeue', true)
    processed.end('ack', false)
    const spans = exporter.getFinishedSpans()
    assert.deepEqual(
      spans.map((s) => s.name),
      ['publish q', 'publish ex:rk', 'process ex:rk:q'],
    )
    const [, publish, process] = spans as [never, (typeof spans)[0], (typeof spans)[0]]
    assert.equal(publish.attributes['error.type'], 'UNROUTABLE')
    assert.equal(
      process.parentSpanContext?.spanId,
      publish.spanContext().spanId,
      'parent from a Buffer header',
    )
    assert.equal(process.attributes['lapinmq.settle.outcome'], 'requeue', 'ended once, by the first settle')
    assert.equal(process.attributes['lapinmq.settle.stale'], true)
    assert.equal(process.attributes['messaging.rabbitmq.message.delivery_tag'], 7)
  } finally {
    trace.disable()
    propagation.disable()
  }
  assert.equal(tracer(), undefined, 'no tracer once the SDK is gone')
})
