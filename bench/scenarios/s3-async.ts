// S3: async confirms, a sliding window of W unconfirmed messages, publishing until the deadline.
// The raw client at the same W is the broker's ceiling (S0) for that window.
// Its pooled variant runs 4 publishers on a pool of 1, 2 or 4 connections (peers of that variant only).
import { poolPeer, poolSizes, publishVerified, type Scenario } from '../lib/common.ts'
import { pooledPublisher, publishOnly, publishPeers } from '../lib/publish.ts'

export const s3: Scenario = {
  id: 'S3',
  title: 'async confirms, window W',
  headline: 'confirmed',
  prefill: () => 0,
  verify: publishVerified,
  peers: {
    ...publishPeers(),
    ...Object.fromEntries(poolSizes.map((size) => [poolPeer(size), publishOnly(pooledPublisher(size))])),
  },
  variantOnlyPeers: poolSizes.map(poolPeer),
}
