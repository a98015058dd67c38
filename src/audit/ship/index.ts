/**
 * Decision-log shipping from the durable audit log (docs/audit.md, "Shipping"): the shipper
 * built from the configuration's `services` and `decision_logs` keys.
 */
import type { Registry } from 'prom-client'
import type { ShippingTarget } from '../../config/decision-logs.js'
import type { DecisionLogsReportingConfig } from '../../config/schema.js'
import type { Logger } from '../../log.js'
import { UploadClient } from './client.js'
import { ShipMetrics } from './metrics.js'
import { Shipper, type ShipDirectory } from './shipper.js'

export { Shipper, type ShipDirectory, type ShipStream, type ShipStatus, type RoundResult } from './shipper.js'
export { UploadClient } from './client.js'
export { ShipMetrics } from './metrics.js'

/** Metrics are registered once per registry (a test may build several shippers in one process). */
const metricsByRegistry = new WeakMap<Registry, ShipMetrics>()

export function shipMetrics (registry: Registry): ShipMetrics {
  let m = metricsByRegistry.get(registry)
  if (m === undefined) { m = new ShipMetrics(registry); metricsByRegistry.set(registry, m) }
  return m
}

export interface CreateShipperOptions {
  /** The audit directory. */
  dir: string
  target: ShippingTarget
  reporting: DecisionLogsReportingConfig
  openDirectory: (dir: string) => Promise<ShipDirectory>
  registry?: Registry
  logger?: Logger
}

export function createShipper (opts: CreateShipperOptions): Shipper {
  const r = opts.reporting
  return new Shipper({
    dir: opts.dir,
    client: new UploadClient(opts.target.service, opts.target.resource),
    openDirectory: opts.openDirectory,
    minDelayMs: r.min_delay_seconds * 1000,
    maxDelayMs: r.max_delay_seconds * 1000,
    uploadSizeLimitBytes: r.upload_size_limit_bytes,
    trigger: r.trigger,
    ...(r.buffer_size_limit_events !== undefined ? { earlyUploadEvents: r.buffer_size_limit_events } : {}),
    ...(opts.registry !== undefined ? { metrics: shipMetrics(opts.registry) } : {}),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
  })
}
