// S9: overload: publish as fast as each peer's flow control allows (async confirms, window 1000)
// for a long time into a bounded queue (x-max-length, overflow drop-head: the broker keeps
// working at full speed without its memory growing). RSS is sampled each second; growth after
// warm-up must be ~0, and every send must be confirmed (none nacked, none left hanging).
import type { Scenario } from '../lib/common.ts'
import { publishers, publishOnly } from '../lib/publish.ts'

/** The peers that have (or, for amqplib, document) flow control for a producer that outruns the broker. */
const peers = ['lapinmq', 'amqplib', 'rabbitmq-client', '@cloudamqp/amqp-client', 'amqp-connection-manager']

export const maxLength = 100_000

export const s9: Scenario = {
  id: 'S9',
  title: 'overload: publish flat out into a bounded queue',
  headline: 'confirmed',
  prefill: () => 0,
  verify: ({ counts, left }) =>
    counts.nacked === 0 && counts.sent === counts.confirmed && left === Math.min(counts.confirmed, maxLength),
  peers: Object.fromEntries(
    Object.entries(publishers)
      .filter(([name]) => peers.includes(name))
      .map(([name, open]) => [name, publishOnly(open)]),
  ),
}
