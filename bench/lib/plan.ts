// What a run measures: each scenario's sweep, quick (`npm run bench`, about a minute) or full
// (`-- --full`, about 20–25 minutes). Quick mode keeps the variants the documented targets are about.

import { s0 } from '../scenarios/s0-ceiling.ts'
import { s1 } from '../scenarios/s1-no-confirms.ts'
import { s2 } from '../scenarios/s2-sync.ts'
import { s3 } from '../scenarios/s3-async.ts'
import { s5 } from '../scenarios/s5-consume.ts'
import { s6 } from '../scenarios/s6-latency.ts'
import { s7 } from '../scenarios/s7-pipeline.ts'
import { s8 } from '../scenarios/s8-slow-link.ts'
import { maxLength, s9 } from '../scenarios/s9-overload.ts'
import { s10 } from '../scenarios/s10-heartbeats.ts'
import { s11, withRetry } from '../scenarios/s11-retry.ts'
import { s12 } from '../scenarios/s12-rpc.ts'
import { s14 } from '../scenarios/s14-telemetry.ts'
import { pooledWorkers, poolPeers, type Scenario, type Task, type Variant } from './common.ts'

/** Every scenario by id: a peer's process (peer-child.ts) finds the peer it is asked to run here. */
export const scenarioById = new Map(
  [s0, s1, s2, s3, s5, s6, s7, s8, s9, s10, s11, s12, s14].map((s) => [s.id, s]),
)

export interface Step {
  scenario: Scenario
  variants: Variant[]
}

const v = (label: string, rest: Partial<Variant>): Variant => ({
  label,
  durationMs: 0,
  count: 0,
  window: 1000,
  prefetch: 0,
  ...rest,
})

const sizeLabel = (size: number) => (size >= 1024 ? `${size / 1024} KB` : `${size} B`)
const taskLabel = { noop: 'no-op', async: '1 ms async', cpu: '1 ms CPU' } as const

/** Messages for about `seconds` of S5 at the rate the model expects (capped at ~35k msg/s here). */
function s5Count(prefetch: number, task: Task, seconds: number): number {
  const t = task === 'noop' ? 0 : 1.3
  const rate = Math.min(task === 'cpu' ? 900 : prefetch / ((t + 0.25) / 1000), 35_000)
  return Math.max(500, Math.round((rate * seconds) / 100) * 100)
}

/** `withS10`: S10 runs in full mode, or when asked for by name (`--only S10`). */
/** `withPooled`: S3 and S7's pooled variants (full mode, or `--variants pooled`). */
export function buildPlan(full: boolean, withS10 = full, withPooled = full): Step[] {
  const ms = full ? 1500 : 400
  const s0Variants = (full ? [false, true] : [false]).flatMap((persistent) => {
    const kind = persistent ? 'persistent' : 'transient'
    return [
      v(`no confirms, ${kind}`, { durationMs: ms, window: 0, persistent }),
      v(`W=1000, ${kind}`, { durationMs: ms, window: 1000, persistent }),
    ]
  })
  const s5Variants = full
    ? (['noop', 'async', 'cpu'] as const).flatMap((task) =>
        [1, 10, 100, 300, 1000].map((prefetch) =>
          v(`prefetch ${prefetch}, ${taskLabel[task]}`, {
            count: s5Count(prefetch, task, 0.7),
            prefetch,
            task,
            rounds: prefetch === 300 && task === 'noop' ? 5 : 3,
          }),
        ),
      )
    : [v('prefetch 300, no-op', { count: 10_000, prefetch: 300, task: 'noop' })]
  const s7Variants = full
    ? [10, 100, 300].flatMap((prefetch) => [
        v(`prefetch ${prefetch}, async`, {
          count: prefetch === 100 ? 40_000 : 20_000,
          prefetch,
          rounds: prefetch === 100 ? 5 : 3,
        }),
        v(`prefetch ${prefetch}, sync (lapinmq)`, {
          count: 4000,
          prefetch,
          publisher: 'sync',
          peers: ['lapinmq'],
          rounds: 3,
        }),
      ])
    : [v('prefetch 100, async', { count: 5_000, prefetch: 100 })]
  const s8Variants = (full ? [2, 5, 20, 50] : [20]).flatMap((rttMs) => [
    v(`RTT ${rttMs} ms, sync`, {
      durationMs: full ? 2000 : 600,
      window: 1,
      publisher: 'sync',
      rttMs,
      rounds: full ? 3 : 1,
      peers: full ? undefined : ['lapinmq', 'raw (S0)'],
    }),
    v(`RTT ${rttMs} ms, async W=1000`, {
      durationMs: full ? 1500 : 800,
      window: 1000,
      rttMs,
      rounds: full ? 3 : 1,
      peers: full ? undefined : ['lapinmq', 'amqplib', 'raw (S0)'],
    }),
  ])
  const rpcMs = full ? 4000 : 2000
  // S11: S5's prefetch 300 no-op consumer with and without `retry` (happy path, the ratio of the
  // target), then 10 % of messages failing once: prefilled (throughput), and at 2k msg/s with the
  // queue kept empty (the ladder's own failure → redelivery time). Only lapinmq has a ladder.
  const s11Variants = [
    v('happy path, prefetch 300, retry [1 s, 10 s]', {
      count: full ? 20_000 : 10_000,
      prefetch: 300,
      retryDelays: [1000, 10_000],
      rounds: 5,
    }),
    v('10 % fail once, retry [100 ms], prefilled', {
      count: 20_000,
      prefetch: 300,
      retryDelays: [100],
      failEvery: 10,
      messageIds: true,
      peers: [withRetry],
      rounds: full ? 5 : 3,
    }),
    v('10 % fail once, retry [100 ms], 2k msg/s', {
      durationMs: full ? 3000 : 2000,
      rate: 2000,
      window: 1000,
      prefetch: 300,
      retryDelays: [100],
      failEvery: 10,
      peers: [withRetry],
      rounds: 3,
    }),
  ]
  return [
    { scenario: s0, variants: s0Variants },
    {
      scenario: s1,
      variants: (full ? [12, 1024, 65536] : [1024]).map((size) =>
        // 64 KB bodies: a shorter run keeps the queue (deleted after) well under a GB of broker memory.
        v(sizeLabel(size), { durationMs: size > 16_384 ? 1000 : ms, window: 0, size, rounds: full ? 3 : 1 }),
      ),
    },
    {
      scenario: s2,
      variants: [
        v('transient', { durationMs: ms, window: 1, publisher: 'sync' }),
        ...(full
          ? [v('persistent', { durationMs: ms, window: 1, publisher: 'sync', persistent: true, rounds: 3 })]
          : []),
      ],
    },
    {
      scenario: s3,
      // The JSON variant right after W=1000 (same window), so the two rows sit side by side.
      variants: (full ? [1, 10, 100, 1000, 10000] : [1000])
        .flatMap((w) => [
          v(`W=${w}`, { durationMs: ms, window: w, rounds: full && w !== 1000 ? 3 : undefined }),
          ...(w === 1000 ? [v(`W=${w}, JSON ~100 B`, { durationMs: ms, window: w, json: true })] : []),
        ])
        .concat(
          // The same window in all, split over 4 publishers on a pool of 1, 2 or 4 connections.
          withPooled
            ? [
                v(`W=1000 over ${pooledWorkers} publishers, pooled`, {
                  durationMs: ms,
                  window: 1000,
                  peers: poolPeers,
                }),
              ]
            : [],
        ),
    },
    { scenario: s5, variants: s5Variants },
    {
      scenario: s6,
      variants: (full ? [1000, 5000] : [5000]).map((rate) =>
        v(`${rate / 1000}k msg/s`, {
          durationMs: full ? 2000 : 600,
          rate,
          prefetch: 100,
          rounds: full ? 3 : 1,
        }),
      ),
    },
    {
      scenario: s7,
      // The same prefetch in all, split over 4 pipelines on a pool of 1, 2 or 4 connections.
      variants: s7Variants.concat(
        withPooled
          ? [
              v(`prefetch 100 over ${pooledWorkers} pipelines, pooled`, {
                count: full ? 40_000 : 5_000,
                prefetch: 100,
                peers: poolPeers,
              }),
            ]
          : [],
      ),
    },
    { scenario: s8, variants: s8Variants },
    {
      scenario: s9,
      variants: [
        v(`${full ? 60 : 10} s flat out, max-length ${maxLength / 1000}k drop-head`, {
          durationMs: full ? 60_000 : 10_000,
          sampleRss: true,
          queueArgs: { 'x-max-length': maxLength, 'x-overflow': 'drop-head' },
          rounds: 1,
          warmUp: false,
          peers: full ? ['lapinmq', 'amqplib', 'rabbitmq-client'] : ['lapinmq'],
        }),
      ],
    },
    { scenario: s11, variants: s11Variants },
    {
      scenario: s12,
      // Calls in flight are the window; the servers' prefetch 100 is above both, so no server holds
      // a call back. `own server`: each client against a server written with its own library.
      variants: [
        v('1 in flight', { durationMs: rpcMs, window: 1, prefetch: 100 }),
        v('50 in flight', { durationMs: rpcMs, window: 50, prefetch: 100 }),
        v('50 in flight, own server', { durationMs: rpcMs, window: 50, prefetch: 100, ownServer: true }),
      ],
    },
    {
      scenario: s14,
      // Longer runs than S3's and S7's quick ones: the targets are ratios within a few per cent.
      variants: [
        v('S3 W=1000', { durationMs: full ? 4000 : 2500, window: 1000 }),
        v('S7 prefetch 100', {
          count: full ? 40_000 : 25_000,
          prefetch: 100,
          pipeline: true,
          ownWarmUp: true,
        }),
      ],
    },
    ...(withS10
      ? [
          {
            scenario: s10,
            variants: [
              v('3 tasks of 2 s, prefetch 1', {
                count: 3,
                prefetch: 1,
                heartbeat: 1,
                blockMs: 2000,
                rounds: 1,
                warmUp: false,
              }),
            ],
          },
        ]
      : []),
  ]
}
