// The optional peer dependency @opentelemetry/api: imported (never required at load time) the first
// time a connection, publisher, consumer or RPC client starts, and only if it is installed. Without
// it, or with it and no SDK registered, telemetry costs next to nothing.
import type * as OtelApiModule from '@opentelemetry/api'

/** @internal The OpenTelemetry API module, as lapinmq uses it. */
export type OtelApi = typeof OtelApiModule

let api: OtelApi | undefined
let loading: Promise<OtelApi | undefined> | undefined

/**
 * @internal Loads `@opentelemetry/api` once; resolves to undefined when it is not installed. Call
 * it from an `async` start: {@link otel} is undefined until it has resolved.
 */
export function loadOtel(): Promise<OtelApi | undefined> {
  loading ??= import('@opentelemetry/api').then(
    (mod) => {
      api = mod
      return api
    },
    () => undefined,
  )
  return loading
}

/** @internal The OpenTelemetry API if {@link loadOtel} found it, else undefined. */
export function otel(): OtelApi | undefined {
  return api
}
