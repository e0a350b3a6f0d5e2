// Traces a request through RabbitMQ with OpenTelemetry: an HTTP-like span publishes an order, a
// consumer processes it; both spans are in the request's trace. In production, register your SDK
// (e.g. @opentelemetry/sdk-node with an OTLP exporter) instead of the printer below.
import { context, propagation, type Span, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { Consumer, MessageStatus, Publisher } from 'lapinmq'

const queue = process.env.QUEUE ?? 'orders'

/** Prints each span as it ends. */
const printer: SpanProcessor = {
  onStart: () => {},
  onEnd: (span: ReadableSpan) => {
    const parent = span.parentSpanContext?.spanId ?? 'none'
    const outcome = span.attributes['lapinmq.settle.outcome'] ?? ''
    const { traceId, spanId } = span.spanContext()
    console.log(`span ${span.name} trace ${traceId} id ${spanId} parent ${parent} ${outcome}`)
  },
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
}
// Before lapinmq starts anything: its spans go to the provider registered when a send is made.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
propagation.setGlobalPropagator(new W3CTraceContextPropagator())
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [printer] }))

let processed: () => void
const done = new Promise<void>((resolve) => {
  processed = resolve
})
const consumer = new Consumer({
  queueName: queue,
  taskFunction: (message) => {
    // The task runs in the message's process span, in the request's trace.
    const { order } = message.json<{ order: number }>()
    console.log(`processing order ${order} in trace ${trace.getActiveSpan()?.spanContext().traceId}`)
    processed()
    return MessageStatus.SUCCESS
  },
})
const publisher = new Publisher({ kind: 'sync' })
await consumer.start()
await publisher.start()

const tracer = trace.getTracer('shop')
await tracer.startActiveSpan('POST /orders', async (span: Span) => {
  await publisher.sendJsonToQueue(queue, { order: 42 }) // a child of 'POST /orders'
  span.end()
})
await done
await consumer.stop()
await publisher.stop()
