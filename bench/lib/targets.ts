// lapinmq's speed targets, checked on the medians of one run: met, not met (with the numbers), or
// not measured in this run.

import { withoutRetry, withRetry } from '../scenarios/s11-retry.ts'
import { apiNoSdk, noApi, sdkBatch } from '../scenarios/s14-telemetry.ts'
import { ceilingPeer } from './common.ts'
import { fastest, find, fix, int, pairedRatio, type Summary, times } from './summary.ts'

/** One speed target: met or not, with the numbers. */
export interface Verdict {
  target: string
  met: boolean | undefined
  numbers: string
}

/** The speed targets, each checked on the medians of this run (undefined: not measured). */
export function verdicts(summaries: Summary[]): Verdict[] {
  const out: Verdict[] = []
  const add = (target: string, met: boolean | undefined, numbers: string) =>
    out.push({ target, met, numbers })
  const get = (sc: string, v: string, p: string) => find(summaries, sc, v, p)
  const r = (s: Summary | undefined) => s?.rate.median ?? Number.NaN

  {
    const v = 'prefetch 100, async'
    const [l, a, rc] = [get('S7', v, 'lapinmq'), get('S7', v, 'amqplib'), get('S7', v, 'rabbitmq-client')]
    const ra = r(l) / r(a)
    const rr = r(l) / r(rc)
    const cpu = (l?.clientCpuUsPerMsg ?? Number.NaN) / (a?.clientCpuUsPerMsg ?? Number.NaN)
    const left = l?.leftMax ?? Number.NaN
    add(
      'S7 pipeline, async publisher, prefetch 100: ≥ 1.1× amqplib, ≥ 1.3× rabbitmq-client msg/s, ≤ 0.9× amqplib CPU/msg, 0 left unacked',
      l && a && rc ? ra >= 1.1 && rr >= 1.3 && cpu <= 0.9 && left === 0 : undefined,
      `${times(ra)} amqplib (${int(r(l))} vs ${int(r(a))}), ${times(rr)} rabbitmq-client (${int(r(rc))}), CPU ${times(cpu)} (${fix(l?.clientCpuUsPerMsg, 1)} vs ${fix(a?.clientCpuUsPerMsg, 1)} µs/msg), left in A: lapinmq ${left}, amqplib ${a?.leftMax ?? '-'}`,
    )
  }
  {
    const v = 'W=1000'
    const l = get('S3', v, 'lapinmq')
    const f = fastest(summaries, 'S3', v)
    // The raw client at W=1000 in S3's own interleaved rounds; S0's separate rounds beside it.
    const ceil = get('S3', v, ceilingPeer) ?? get('S0', 'W=1000, transient', ceilingPeer)
    const s0 = get('S0', 'W=1000, transient', ceilingPeer)
    const rf = r(l) / r(f)
    const rc = r(l) / r(ceil)
    add(
      'S3 async confirms, window 1000: ≥ 0.9× the fastest peer and ≥ 0.8× the S0 ceiling',
      l && f && ceil ? rf >= 0.9 && rc >= 0.8 : undefined,
      `${times(rf)} ${f?.peer ?? '-'} (${int(r(l))} vs ${int(r(f))}), ${times(rc)} the raw client in the same rounds (${int(r(ceil))}); S0's own rounds: ${int(r(s0))} (${times(r(l) / r(s0))})`,
    )
  }
  {
    const v = 'transient'
    const [l, a] = [get('S2', v, 'lapinmq'), get('S2', v, 'amqplib')]
    const ra = r(l) / r(a)
    const rm = (l?.model ?? Number.NaN) / r(l)
    add(
      'S2 sync confirms: ≥ 0.95× amqplib, within 1.2× of the 1/RTT model',
      l && a ? ra >= 0.95 && rm <= 1.2 : undefined,
      `${times(ra)} amqplib (${int(r(l))} vs ${int(r(a))}); model ${int(l?.model)} is ${times(rm)} lapinmq's rate`,
    )
  }
  {
    const v = 'prefetch 300, no-op'
    const [l, a] = [get('S5', v, 'lapinmq'), get('S5', v, 'amqplib')]
    const ra = r(l) / r(a)
    add(
      'S5 consume, prefetch 300, no-op task: ≥ 1.0× amqplib',
      l && a ? ra >= 1.0 : undefined,
      `${times(ra)} amqplib (${int(r(l))} vs ${int(r(a))})`,
    )
  }
  {
    const v = 'happy path, prefetch 300, retry [1 s, 10 s]'
    const [l, n] = [get('S11', v, withRetry), get('S11', v, withoutRetry)]
    const rn = r(l) / r(n)
    add(
      'S11 retry ladder, happy path (prefetch 300, no message fails): ≥ 0.97× the same consumer without retry',
      l && n ? rn >= 0.97 : undefined,
      `${times(rn)} (${int(r(l))} msg/s, ${int(l?.rate.min)}–${int(l?.rate.max)}, vs ${int(r(n))}, ${int(n?.rate.min)}–${int(n?.rate.max)}); CPU ${fix(l?.clientCpuUsPerMsg, 1)} vs ${fix(n?.clientCpuUsPerMsg, 1)} µs/msg`,
    )
  }
  {
    const l = get('S12', '50 in flight', 'lapinmq')
    const f = fastest(summaries, 'S12', '50 in flight')
    const rf = r(l) / r(f)
    add(
      'S12 RPC over direct reply-to, 50 calls in flight: ≥ 1.0× the fastest peer',
      l && f ? rf >= 1.0 : undefined,
      `${times(rf)} ${f?.peer ?? '-'} (${int(r(l))} vs ${int(r(f))} calls/s); CPU ${fix(l?.clientCpuUsPerMsg, 1)} vs ${fix(f?.clientCpuUsPerMsg, 1)} µs/call`,
    )
  }
  {
    const [l, a] = [get('S12', '1 in flight', 'lapinmq'), get('S12', '1 in flight', 'amqplib')]
    const p50 = (l?.confirmLatency.p50 ?? Number.NaN) / (a?.confirmLatency.p50 ?? Number.NaN)
    add(
      "S12 RPC, 1 call in flight: call → reply p50 within 1.2× the hand-written amqplib client's",
      l && a ? p50 <= 1.2 : undefined,
      `p50 ${fix(l?.confirmLatency.p50, 3)} vs ${fix(a?.confirmLatency.p50, 3)} ms (${times(p50)}); p99 ${fix(l?.confirmLatency.p99, 3)} vs ${fix(a?.confirmLatency.p99, 3)} ms; ${int(r(l))} vs ${int(r(a))} calls/s`,
    )
  }
  // S14: each telemetry set-up ÷ the same code without the OTel API, in S3's and S7's variants,
  // judged on the rounds' median of the ratio within a round (rates drift from round to round).
  for (const [peer, floor, what] of [
    [apiNoSdk, 0.97, 'the OTel API installed, no SDK'],
    [sdkBatch, 0.6, 'the OTel SDK with a batch span processor'],
  ] as const) {
    const variants = ['S3 W=1000', 'S7 prefetch 100'] as const
    const pairs = variants.map((v) => [v, get('S14', v, peer), get('S14', v, noApi)] as const)
    const measured = pairs.every(([, x, base]) => x && base)
    add(
      `S14 telemetry cost, ${what}: ≥ ${floor}× the msg/s without the OTel API, round by round (S3 window 1000, S7 prefetch 100)`,
      measured ? pairs.every(([, x, base]) => pairedRatio(x, base) >= floor) : undefined,
      pairs
        .map(
          ([v, x, base]) =>
            `${v}: ${times(pairedRatio(x, base))} round by round, ${times(r(x) / r(base))} of the medians (${int(r(x))} vs ${int(r(base))}), CPU ${fix(x?.clientCpuUsPerMsg, 1)} vs ${fix(base?.clientCpuUsPerMsg, 1)} µs/msg (${times((x?.clientCpuUsPerMsg ?? Number.NaN) / (base?.clientCpuUsPerMsg ?? Number.NaN))})`,
        )
        .join('; '),
    )
  }
  {
    const l = get('S8', 'RTT 20 ms, async W=1000', 'lapinmq')
    const raw = get('S8', 'RTT 20 ms, async W=1000', ceilingPeer)
    const rm = r(l) / (l?.model ?? Number.NaN)
    add(
      'S8 RTT 20 ms, async window 1000: within 15% of min(W/RTT, S0 ceiling)',
      l?.model ? rm >= 0.85 && rm <= 1.15 : undefined,
      `${int(r(l))} msg/s = ${times(rm)} the model's ${int(l?.model)}; the raw client through the same proxy: ${int(r(raw))} msg/s (lapinmq ${times(r(l) / r(raw))})`,
    )
  }
  {
    const l = summaries.find((s) => s.scenario === 'S9' && s.peer === 'lapinmq')
    add(
      'S9 overload: RSS flat after warm-up (< 10 MB growth), no message lost',
      l ? l.rssGrowthMB < 10 && l.ok === l.rounds : undefined,
      l
        ? `${l.variant}: RSS growth ${fix(l.rssGrowthMB, 1)} MB (peak ${fix(l.peakRssMB, 0)} MB); ${l.counts.sent} sent, ${l.counts.confirmed} confirmed, ${l.counts.nacked} nacked; counts ok ${l.ok}/${l.rounds}`
        : '-',
    )
  }
  return out
}

export function formatVerdicts(vs: Verdict[]): string {
  const mark = (m: boolean | undefined) => (m === undefined ? 'n/a' : m ? 'met' : 'NOT MET')
  return vs.map((v) => `${mark(v.met).padEnd(7)}  ${v.target}\n         ${v.numbers}`).join('\n')
}
