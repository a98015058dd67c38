/**
 * The shipping part of `decision_logs` (OPA's keys; the shipper is src/audit/ship/): OPA's
 * rules before and after validation, and which service and resource events go to. Console, mask and drop settings of the same section belong to the audit trail.
 */
import { DECISION_LOGS_DEFAULT_RESOURCE } from './defaults.js'
import type { DecisionLogsConfig, ServiceConfig } from './schema.js'
import { configInvalid as invalid } from './validate.js'

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/**
 * Before merging: OPA's rule that min and max delay come together (plugin.go
 * validateAndInjectDefaults), checked on each layer the user wrote (the defaults hold both).
 */
export function checkReportingLayer (layer: unknown): void {
  if (!isObject(layer) || !isObject(layer.decision_logs)) return
  const reporting = layer.decision_logs.reporting
  if (!isObject(reporting)) return
  const hasMin = reporting.min_delay_seconds !== undefined
  const hasMax = reporting.max_delay_seconds !== undefined
  if (hasMin !== hasMax) {
    const missing = hasMin ? 'max_delay_seconds' : 'min_delay_seconds'
    throw invalid(`config key decision_logs.reporting.${missing} is required when ${hasMin ? 'min_delay_seconds' : 'max_delay_seconds'} is set (as in OPA)`, `decision_logs.reporting.${missing}`)
  }
}

/**
 * OPA's default service (plugin.go): a `decision_logs` section the user wrote without a
 * `service` ships to the first service listed, unless console logging is on (then OPA cannot
 * tell whether only console logs were wanted). `userSection`: some layer held `decision_logs`
 * (the defaults always do). Called on the merged configuration, before validation.
 */
export function defaultShippingService (config: { decision_logs?: unknown, services?: unknown }, userSection: boolean): void {
  const dl = config.decision_logs
  if (!userSection || !isObject(dl) || dl.service !== undefined || dl.console === true) return
  if (!isObject(config.services)) return
  const first = Object.keys(config.services)[0]
  if (first !== undefined) dl.service = first
}

/** Where decision-log events are uploaded: the service (by name, with its settings) and the resource path. */
export interface ShippingTarget {
  serviceName: string
  service: ServiceConfig
  /** Path under the service URL, starting with '/'. */
  resource: string
}

/** The part of the configuration shipping reads (the audit section is the audit trail's). */
export interface ShippingConfigView {
  decision_logs?: DecisionLogsConfig
  services?: Record<string, ServiceConfig>
  audit?: { enabled?: boolean }
}

/**
 * Which service decision logs are shipped to: `decision_logs.service` (set by the user, or by
 * `defaultShippingService` as OPA defaults it). Undefined: no shipping.
 */
export function shippingTarget (config: ShippingConfigView): ShippingTarget | undefined {
  const dl = config.decision_logs
  if (dl?.service === undefined) return undefined
  const service = config.services?.[dl.service]
  if (service === undefined) return undefined
  let resource = dl.partition_name !== undefined ? `/logs/${dl.partition_name}` : dl.resource ?? DECISION_LOGS_DEFAULT_RESOURCE
  if (!resource.startsWith('/')) resource = `/${resource}`
  return { serviceName: dl.service, service, resource }
}

/**
 * After validation: OPA's rules (the named service exists, max ≥ min delay) and ours: shipping
 * reads the durable audit log, so it needs `audit.enabled`.
 */
export function checkDecisionLogs (config: ShippingConfigView): void {
  const dl = config.decision_logs
  if (dl === undefined) return
  if (dl.service !== undefined && config.services?.[dl.service] === undefined) {
    throw invalid(`config key decision_logs.service: no service named ${JSON.stringify(dl.service)} in services`, 'decision_logs.service')
  }
  if (dl.reporting.max_delay_seconds < dl.reporting.min_delay_seconds) {
    throw invalid('config key decision_logs.reporting.max_delay_seconds: must be >= min_delay_seconds (as in OPA)', 'decision_logs.reporting.max_delay_seconds')
  }
  if (shippingTarget(config) !== undefined && config.audit?.enabled !== true) {
    throw invalid('config key decision_logs.service: shipping decision logs reads them from the durable audit log; set audit.enabled: true (and audit.dir)', 'decision_logs.service')
  }
}

/**
 * Warnings about a shipping configuration that is valid but may lose events: audit retention
 * removes segments whether or not the collector acknowledged them (counted in
 * portcullis_decision_logs_lost_to_retention_total and logged when it happens). Logged at start.
 */
export function shippingWarnings (config: ShippingConfigView & { audit?: { enabled?: boolean, retention?: { max_age_seconds?: number, max_bytes?: number, protect_unshipped?: boolean } } }): string[] {
  const dl = config.decision_logs
  if (dl === undefined || shippingTarget(config) === undefined) return []
  const out: string[] = []
  const retention = config.audit?.retention ?? {}
  if (retention.protect_unshipped !== false) {
    // the default: retention waits for the collector, so nothing is lost, but the log can grow
    if (retention.max_age_seconds !== undefined || retention.max_bytes !== undefined) {
      out.push('audit retention keeps segments holding events the collector has not acknowledged (audit.retention.protect_unshipped): during a long collector outage the log grows past the retention limits')
    }
    return out
  }
  const maxDelay = dl.reporting.max_delay_seconds
  if (retention.max_age_seconds !== undefined && retention.max_age_seconds < 4 * maxDelay) {
    out.push(`audit.retention.max_age_seconds (${retention.max_age_seconds}) is less than 4 × decision_logs.reporting.max_delay_seconds (${maxDelay}): retention may remove events before they are shipped`)
  }
  if (retention.max_age_seconds !== undefined || retention.max_bytes !== undefined) {
    out.push('audit retention is on: events the collector has not acknowledged when retention removes their segment are lost to shipping (they are counted and logged); size retention for the longest collector outage you must survive')
  }
  return out
}
