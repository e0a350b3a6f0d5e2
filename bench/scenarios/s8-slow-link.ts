// S8: publish through a delaying TCP proxy (round trip RTT added), sync vs async window 1000.
// Models: sync ≈ 1 / (RTT + local confirm time); async ≈ min(W / (RTT + local confirm time), S0
// ceiling). The raw client's row is the ceiling through the same proxy.
import { ceilingPeer, publishVerified, type Scenario } from '../lib/common.ts'
import { publishers, publishOnly, rawPublisher } from '../lib/publish.ts'

const peers = ['lapinmq', 'amqplib', 'rabbitmq-client']

export const s8: Scenario = {
  id: 'S8',
  title: 'publish through a delaying proxy',
  headline: 'confirmed',
  prefill: () => 0,
  verify: publishVerified,
  peers: {
    ...Object.fromEntries(
      Object.entries(publishers)
        .filter(([name]) => peers.includes(name))
        .map(([name, open]) => [name, publishOnly(open)]),
    ),
    [ceilingPeer]: publishOnly(rawPublisher),
  },
}
