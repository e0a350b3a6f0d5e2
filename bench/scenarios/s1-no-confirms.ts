// S1: publish without confirms (messages counted in the queue afterwards). lapinmq has no
// unconfirmed mode: its row is its async publisher, window 1000, i.e. the price of confirms.
import { publishVerified, type Scenario } from '../lib/common.ts'
import { publishPeers } from '../lib/publish.ts'

export const s1: Scenario = {
  id: 'S1',
  title: 'publish without confirms (lapinmq: confirms, window 1000)',
  headline: 'sent',
  prefill: () => 0,
  verify: publishVerified,
  peers: publishPeers(),
}
