// S14: what lapinmq's OpenTelemetry support costs. lapinmq's S3 publisher (async, window 1000) and
// S7 pipeline (prefetch 100) as they are, run by three peers, each in a process of its own and
// interleaved round by round; only what the process has of OpenTelemetry differs:
// - 'lapinmq, no OTel API': `@opentelemetry/api` cannot be imported there (the process runs with
//   lib/no-otel-api.mjs, a resolve hook that hides every `@opentelemetry/*` package), as in an
//   application without the optional peer dependency;
// - 'lapinmq, API, no SDK': the API installed (the repository's own devDependency, where dist/
//   resolves it), nothing registered: the global tracer is the API's no-op one;
// - 'lapinmq, SDK + batch': a tracer provider with a BatchSpanProcessor (to an exporter that counts
//   and drops the spans), the AsyncLocalStorage context manager and the W3C propagator, registered
//   globally (lib/otel-sdk.ts) before lapinmq starts. counts.spans: the spans exported in the run.
import type * as OtelApiModule from '@opentelemetry/api'
import { type PeerRun, publishVerified, type RunContext, type Scenario } from '../lib/common.ts'
import { publishers, publishOnly } from '../lib/publish.ts'
import { s7 } from './s7-pipeline.ts'

type OtelApi = typeof OtelApiModule

export const noApi = 'lapinmq, no OTel API'
export const apiNoSdk = 'lapinmq, API, no SDK'
export const sdkBatch = 'lapinmq, SDK + batch'
export const telemetryPeers: readonly string[] = [noApi, apiNoSdk, sdkBatch]

const s3Run = publishers.lapinmq ? publishOnly(publishers.lapinmq) : undefined
const s7Run = s7.peers.lapinmq

/** S3's publisher, or S7's pipeline for the variants marked `pipeline`. */
function lapinmqRun(ctx: RunContext): Promise<void> {
  const run = ctx.pipeline ? s7Run : s3Run
  if (!run) throw new Error('S14: no lapinmq peer in S3 or S7')
  return run(ctx)
}

/** The OTel API as lapinmq's own loader (dist/, what lapinmq calls when it starts) finds it here. */
async function lapinmqsApi(): Promise<OtelApi | undefined> {
  // @internal, so not in the build's declarations.
  const { loadOtel } = (await import('../../dist/telemetry/otel.js')) as unknown as {
    loadOtel(): Promise<OtelApi | undefined>
  }
  return loadOtel()
}

let checked = false

/**
 * Checks once per process that the API is there or not, as the peer says, and whether a span
 * started through lapinmq's copy of the API records (it does only once the SDK is registered).
 */
async function check(loadable: boolean, recording = false): Promise<void> {
  if (checked) return
  const api = await lapinmqsApi()
  if ((api !== undefined) !== loadable) {
    throw new Error(`S14: @opentelemetry/api is ${loadable ? 'not ' : ''}loadable in this process`)
  }
  if (api) {
    const span = api.trace.getTracer('lapinmq-bench').startSpan('S14 check')
    const records = span.isRecording()
    span.end()
    if (records !== recording) throw new Error(`S14: spans ${records ? 'record' : 'do not record'} here`)
  }
  checked = true
}

const peers: Record<string, PeerRun> = {
  async [noApi](ctx) {
    await check(false)
    await lapinmqRun(ctx)
  },
  async [apiNoSdk](ctx) {
    await check(true)
    await lapinmqRun(ctx)
  },
  async [sdkBatch](ctx) {
    const { setUpTracing } = await import('../lib/otel-sdk.ts')
    const tracing = setUpTracing()
    await check(true, true)
    await tracing.flush()
    const before = tracing.exported()
    await lapinmqRun(ctx)
    // After the measured part: what the batch processor still holds is counted, not timed.
    await tracing.flush()
    ctx.counts.spans = tracing.exported() - before
  },
}

export const s14: Scenario = {
  id: 'S14',
  title: 'telemetry cost (lapinmq without the OTel API, with it and no SDK, with the SDK)',
  headline: 'confirmed',
  sink: true,
  prefill: ({ pipeline, count }) => (pipeline ? count : 0),
  verify: (check, variant) =>
    variant.pipeline ? s7.verify(check, variant) : publishVerified(check, variant),
  peers,
  peerNodeArgs: { [noApi]: ['--import', new URL('../lib/no-otel-api.mjs', import.meta.url).href] },
}
