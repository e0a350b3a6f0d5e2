// S3: async confirms, a sliding window of W unconfirmed messages, publishing until the deadline.
// The raw client at the same W is the broker's ceiling (S0) for that window.
import { publishVerified, type Scenario } from '../lib/common.ts'
import { publishPeers } from '../lib/publish.ts'

export const s3: Scenario = {
  id: 'S3',
  title: 'async confirms, window W',
  headline: 'confirmed',
  prefill: () => 0,
  verify: publishVerified,
  peers: publishPeers(),
}
