// S2: sync confirms, one message in flight: publish, wait for its confirm, publish the next.
// Model: 1 / (round trip + broker time), the raw client's row measuring it without client overhead.
import { publishVerified, type Scenario } from '../lib/common.ts'
import { publishPeers } from '../lib/publish.ts'

export const s2: Scenario = {
  id: 'S2',
  title: 'sync confirms (1 in flight)',
  headline: 'confirmed',
  prefill: () => 0,
  verify: publishVerified,
  peers: publishPeers(),
}
