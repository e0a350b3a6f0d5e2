// An OpenTelemetry SDK for tracing tests: a tracer provider that keeps finished spans in memory,
// AsyncLocalStorage context and the W3C trace-context propagator, registered globally (node:test
// runs each file in its own process), and a count of spans started and not yet ended.
import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base'

/** Spans started and not ended yet, by span id. */
class OpenSpans implements SpanProcessor {
  readonly open = new Map<string, Span>()
  started = 0
  ended = 0
  /** The order spans ended in, by span id (the clock's end times may disagree by a few µs). */
  readonly endOrder = new Map<string, number>()
  onStart(span: Span): void {
    this.started++
    this.open.set(span.spanContext().spanId, span)
  }
  onEnd(span: ReadableSpan): void {
    this.ended++
    this.endOrder.set(span.spanContext().spanId, this.ended)
    this.open.delete(span.spanContext().spanId)
  }
  forceFlush(): Promise<void> {
    return Promise.resolve()
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

export interface TestTracing {
  exporter: InMemorySpanExporter
  openSpans: OpenSpans
  /** Finished spans. */
  spans(): ReadableSpan[]
}

/** Registers the SDK globally; call once per test file, before lapinmq starts anything. */
export function registerTestTracing(): TestTracing {
  const exporter = new InMemorySpanExporter()
  const openSpans = new OpenSpans()
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter), openSpans],
  })
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  trace.setGlobalTracerProvider(provider)
  return { exporter, openSpans, spans: () => exporter.getFinishedSpans() }
}

/** The spans' parent span id (SDK 2.x: `parentSpanContext`). */
export function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId
}
