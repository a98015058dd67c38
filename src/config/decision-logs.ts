/**
 * The shipping part of `decision_logs` (OPA's keys; the shipper is src/audit/ship/): its
 * defaults before validation and OPA's cross-key rules after, plus which service and resource
 * events go to. Console, mask and drop settings of the same section belong to the audit trail.
 */
import { DECISION_LOGS_DEFAULT_RESOURCE, DECISION_LOGS_REPORTING_DEFAULTS } from './defaults.js'
import type { DecisionLogsConfig, ServiceConfig } from './schema.js'
import { configInvalid as invalid } from './validate.js'

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/**
 * Before validation: OPA's rule that min and max delay come together (plugin.go
 * validateAndInjectDefaults), then the reporting defaults.
 */
export function prepareDecisionLogs (raw: unknown): unknown {
  if (raw === null || raw === undefined) return {}
  if (!isObject(raw)) return raw
  const reporting = raw.reporting ?? {}
  if (!isObject(reporting)) return raw
  const hasMin = reporting.min_delay_seconds !== undefined
  const hasMax = reporting.max_delay_seconds !== undefined
  if (hasMin !== hasMax) {
    const missing = hasMin ? 'max_delay_seconds' : 'min_delay_seconds'
    throw invalid(`config key decision_logs.reporting.${missing} is required when ${hasMin ? 'min_delay_seconds' : 'max_delay_seconds'} is set (as in OPA)`, `decision_logs.reporting.${missing}`)
  }
  return { ...raw, reporting: { ...DECISION_LOGS_REPORTING_DEFAULTS, ...reporting } }
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
  decision_logs?: DecisionLogsConfig & { console?: boolean }
  services?: Record<string, ServiceConfig>
  audit?: { enabled?: boolean }
}

/**
 * Which service decision logs are shipped to, as OPA decides it: `decision_logs.service`, or,
 * when unset and console logging is off, the first service listed; none without a
 * `decision_logs` section. Undefined: no shipping.
 */
export function shippingTarget (config: ShippingConfigView): ShippingTarget | undefined {
  const dl = config.decision_logs
  if (dl === undefined) return undefined
  const services = config.services ?? {}
  let name = dl.service
  if (name === undefined) {
    const first = Object.keys(services)[0]
    if (first === undefined || dl.console === true) return undefined
    name = first
  }
  const service = services[name]
  if (service === undefined) return undefined
  let resource = dl.partition_name !== undefined ? `/logs/${dl.partition_name}` : dl.resource ?? DECISION_LOGS_DEFAULT_RESOURCE
  if (!resource.startsWith('/')) resource = `/${resource}`
  return { serviceName: name, service, resource }
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
