// S14's "SDK + batch" peer: the OpenTelemetry tracing SDK registered globally in the peer's process
// before lapinmq starts, as an application sets it up: a BasicTracerProvider whose BatchSpanProcessor
// (default settings) exports to an exporter that only counts the spans it is given and drops them,
// the AsyncLocalStorage context manager and the W3C trace-context propagator. Imported only by that
// peer (dynamically), so no other peer's process loads the SDK.
import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base'

/** Counts the spans exported, keeps none: the SDK's work without a collector's. */
class CountingExporter implements SpanExporter {
  exported = 0

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.exported += spans.length
    resultCallback({ code: ExportResultCode.SUCCESS })
  }

  async shutdown(): Promise<void> {}
}

export interface Tracing {
  /** Spans the exporter was given so far. */
  exported(): number
  /** Exports what the batch processor still holds. */
  flush(): Promise<void>
}

let tracing: Tracing | undefined

/** Registers the SDK globally, once per process. */
export function setUpTracing(): Tracing {
  if (tracing) return tracing
  const exporter = new CountingExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] })
  if (!context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())) {
    throw new Error('S14: a global context manager was already registered')
  }
  if (!propagation.setGlobalPropagator(new W3CTraceContextPropagator())) {
    throw new Error('S14: a global propagator was already registered')
  }
  if (!trace.setGlobalTracerProvider(provider)) {
    throw new Error('S14: a global tracer provider was already registered')
  }
  tracing = { exported: () => exporter.exported, flush: () => provider.forceFlush() }
  return tracing
}
