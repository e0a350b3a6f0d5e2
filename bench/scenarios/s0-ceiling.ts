// S0: the broker's ceiling on this machine, measured by the minimal raw client written for the
// benchmark (pre-encoded frames, batched writes): no confirms or a window of W, transient or
// persistent. The denominator of "close to the limit"; S1, S2, S3 and S8 run it as a row too.
import { publishVerified, type Scenario } from '../lib/common.ts'
import { publishOnly, rawPublisher } from '../lib/publish.ts'

export const s0: Scenario = {
  id: 'S0',
  title: 'broker ceiling (minimal raw client)',
  headline: 'sent',
  prefill: () => 0,
  verify: publishVerified,
  peers: { 'raw (S0)': publishOnly(rawPublisher) },
}
