/**
 * deploy/kubernetes: every manifest decodes strictly into the official Kubernetes API types
 * and passes the cross-object checks of tools/k8s-validate (no cluster runs on the project's
 * machines); broken copies do not; the manifests keep the deployment's invariants (non-root,
 * read-only root filesystem, probes on /health/live and /health/ready, the SPIFFE CSI socket
 * where the configuration looks for it, every path Portcullis writes on a volume); the Envoy
 * bootstrap inside the sidecar's ConfigMap is valid for Envoy (tools/envoy-validate); and the
 * Portcullis configuration inside the ConfigMaps loads with Portcullis's own loader.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, posix } from 'node:path'
import { parse, parseAllDocuments, stringify } from 'yaml'
import { repoRoot } from '../../scripts/lib/opa.js'
import { loadConfig } from '../../src/config/load.js'
import { PortcullisError } from '../../src/errors.js'
import { needsEnvoyValidate, runEnvoyValidate } from '../helpers/envoy-validate.js'
import { needsK8sValidate, runK8sValidate } from '../helpers/k8s-validate.js'
import { tempDir } from '../helpers/opa.js'

const KUBE = join(repoRoot, 'deploy', 'kubernetes')
const FOLDERS = ['sidecar', 'central']

// Kubernetes objects are deep, untyped YAML: `any` for reading them
type Obj = any

/** Every document of every YAML file in a folder, with the file it came from. */
function objects (folder: string): Array<{ file: string, doc: Obj }> {
  const dir = join(KUBE, folder)
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().flatMap((f) =>
    parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => ({ file: f, doc: d.toJS() as Obj })).filter((o) => o.doc !== null))
}

const ofKind = (folder: string, kind: string): Obj[] => objects(folder).filter((o) => o.doc.kind === kind).map((o) => o.doc)
const one = (folder: string, kind: string, name?: string): Obj => {
  const found = ofKind(folder, kind).filter((d) => name === undefined || d.metadata.name === name)
  assert.equal(found.length, 1, `${folder}: one ${kind}${name !== undefined ? ` ${name}` : ''}`)
  return found[0]
}
const podSpec = (workload: Obj): Obj => workload.spec.template.spec
const allContainers = (spec: Obj): Obj[] => [...(spec.initContainers ?? []), ...spec.containers]
const portcullisContainer = (spec: Obj): Obj => {
  const c = allContainers(spec).filter((x) => (x.image as string).startsWith('portcullis:'))
  assert.equal(c.length, 1)
  return c[0]
}
const configPath = (c: Obj): string => {
  const i = (c.args as string[]).indexOf('--config')
  assert.ok(i >= 0, 'the Portcullis container names its --config')
  return c.args[i + 1]
}

/** The Portcullis configuration a workload runs: the ConfigMap key mounted at its --config path. */
function portcullisConfig (folder: string, workload: Obj): { text: string, container: Obj } {
  const spec = podSpec(workload)
  const c = portcullisContainer(spec)
  const file = configPath(c)
  const mount = (c.volumeMounts as Obj[]).find((m) => file.startsWith(`${m.mountPath as string}/`))
  assert.ok(mount !== undefined, `${file} is on a mounted volume`)
  const volume = (spec.volumes as Obj[]).find((v) => v.name === mount.name)
  const item = (volume.configMap.items as Obj[]).find((i) => i.path === posix.relative(mount.mountPath, file))
  const cm = one(folder, 'ConfigMap', volume.configMap.name)
  return { text: cm.data[item.key], container: c }
}

const workloads = (folder: string): Obj[] => ofKind(folder, 'Deployment')

describe('tools/k8s-validate', needsK8sValidate(), () => {
  for (const folder of FOLDERS) {
    test(`deploy/kubernetes/${folder}: every file is valid and listed in the kustomization`, () => {
      const kustomization = join(KUBE, folder, 'kustomization.yaml')
      const r = runK8sValidate([kustomization])
      assert.deepEqual(r.problems, [])
      assert.equal(r.status, 0)
      const files = readdirSync(join(KUBE, folder)).filter((f) => f.endsWith('.yaml')).sort()
      assert.deepEqual(r.valid.map((f) => f.slice(join(KUBE, folder).length + 1)).sort(), files)
    })
  }

  /** A copy of a manifest folder with one file's documents changed; the kinds of problems found. */
  const broken = (t: { after: (fn: () => void) => void }, folder: string, file: string, mutate: (docs: Obj[]) => void): string[] => {
    const dir = join(tempDir(t, 'portcullis-k8s-'), folder)
    cpSync(join(KUBE, folder), dir, { recursive: true })
    if (file !== '') {
      const docs = parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS() as Obj)
      mutate(docs)
      writeFileSync(join(dir, file), docs.map((d) => stringify(d)).join('---\n'))
    } else {
      mutate([])
    }
    const r = runK8sValidate([join(dir, 'kustomization.yaml')])
    assert.equal(r.status, 1, 'a broken manifest must fail')
    assert.ok(r.problems.length > 0)
    return [...new Set(r.problems.map((p) => p.kind))].sort()
  }
  const container = (d: Obj): Obj => d.spec.template.spec.containers[0]

  const cases: Array<{ name: string, folder: string, file: string, mutate: (docs: Obj[]) => void, kinds: string[] }> = [
    { name: 'an unknown field in a container', folder: 'central', file: 'deployment.yaml', mutate: ([d]) => { container(d).imagePullPolicyy = 'Always' }, kinds: ['DECODE'] },
    { name: 'a field spelt with the wrong case', folder: 'central', file: 'deployment.yaml', mutate: ([d]) => { d.spec.Selector = d.spec.selector }, kinds: ['DECODE'] },
    { name: 'a string where an integer belongs', folder: 'central', file: 'hpa.yaml', mutate: ([d]) => { d.spec.maxReplicas = 'twelve' }, kinds: ['DECODE'] },
    { name: 'a malformed resource quantity', folder: 'central', file: 'deployment.yaml', mutate: ([d]) => { container(d).resources.requests.cpu = 'two cores' }, kinds: ['DECODE'] },
    { name: 'an unknown field in a ConfigMap', folder: 'sidecar', file: 'configmap-envoy.yaml', mutate: ([d]) => { d.spec = {} }, kinds: ['DECODE'] },
    { name: 'a removed API version (policy/v1beta1)', folder: 'central', file: 'pdb.yaml', mutate: ([d]) => { d.apiVersion = 'policy/v1beta1' }, kinds: ['UNKNOWN_KIND'] },
    { name: 'a kind that does not exist', folder: 'central', file: 'hpa.yaml', mutate: ([d]) => { d.kind = 'HorizontalPodScaler' }, kinds: ['UNKNOWN_KIND'] },
    { name: 'a selector that does not match the pod template', folder: 'central', file: 'deployment.yaml', mutate: ([d]) => { d.spec.selector.matchLabels['app.kubernetes.io/component'] = 'other' }, kinds: ['SELECTOR'] },
    { name: 'a probe on a port the container does not name', folder: 'central', file: 'deployment.yaml', mutate: ([d]) => { container(d).readinessProbe.httpGet.port = 'admin' }, kinds: ['PORT'] },
    { name: 'a Service target port no pod names', folder: 'central', file: 'service.yaml', mutate: (docs) => { docs[1].spec.ports[0].targetPort = 'grcp' }, kinds: ['PORT'] },
    { name: 'a ConfigMap that is not in the set', folder: 'sidecar', file: 'deployment.yaml', mutate: ([d]) => { d.spec.template.spec.volumes[0].configMap.name = 'orders-portculis' }, kinds: ['REFERENCE'] },
    { name: 'a ConfigMap key that does not exist', folder: 'sidecar', file: 'deployment.yaml', mutate: ([d]) => { d.spec.template.spec.volumes[1].configMap.items[0].key = 'bootstrap.yaml' }, kinds: ['REFERENCE'] },
    { name: 'a volume mount without a volume', folder: 'sidecar', file: 'deployment.yaml', mutate: ([d]) => { d.spec.template.spec.volumes = d.spec.template.spec.volumes.filter((v: Obj) => v.name !== 'spiffe-workload-api') }, kinds: ['REFERENCE'] },
    { name: 'an HPA aimed at a Deployment that is not there', folder: 'central', file: 'hpa.yaml', mutate: ([d]) => { d.spec.scaleTargetRef.name = 'portcullis-v2' }, kinds: ['REFERENCE'] },
    { name: 'CPU utilization scaling without a CPU request', folder: 'central', file: 'deployment.yaml', mutate: ([d]) => { delete container(d).resources.requests.cpu }, kinds: ['RESOURCES'] },
    { name: 'a PodDisruptionBudget selecting nothing', folder: 'central', file: 'pdb.yaml', mutate: ([d]) => { d.spec.selector.matchLabels['app.kubernetes.io/name'] = 'portcullis-old' }, kinds: ['SELECTOR'] },
    { name: 'a NetworkPolicy on a port no pod names', folder: 'central', file: 'networkpolicy.yaml', mutate: ([d]) => { d.spec.ingress[0].ports[0].port = 'grpc-tls' }, kinds: ['PORT'] },
    { name: 'a Service name that is not a DNS label', folder: 'central', file: 'service.yaml', mutate: (docs) => { docs[0].metadata.name = 'Portcullis_API' }, kinds: ['META'] },
    { name: 'a kustomization resource that does not exist', folder: 'central', file: 'kustomization.yaml', mutate: ([d]) => { d.resources.push('ingress.yaml') }, kinds: ['KUSTOMIZATION'] },
    { name: 'an unknown field in the kustomization', folder: 'sidecar', file: 'kustomization.yaml', mutate: ([d]) => { d.resource = d.resources }, kinds: ['DECODE'] },
  ]
  for (const c of cases) {
    test(`fails: ${c.name}`, (t) => {
      assert.deepEqual(broken(t, c.folder, c.file, c.mutate), c.kinds)
    })
  }

  test('fails: a duplicate key, not YAML, and a missing file; a valid file beside them is still reported valid', (t) => {
    const dir = tempDir(t, 'portcullis-k8s-')
    const dup = join(dir, 'dup.yaml')
    writeFileSync(dup, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nmetadata: {name: b}\n')
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'apiVersion: v1\nkind: [unclosed\n')
    const missing = join(dir, 'missing.yaml')
    const sa = join(KUBE, 'central', 'serviceaccount.yaml')
    const r = runK8sValidate([sa, dup, bad, missing])
    assert.equal(r.status, 1)
    assert.deepEqual(r.problems.map((p) => [p.file, p.kind]), [[dup, 'YAML'], [bad, 'YAML'], [missing, 'READ']])
    assert.deepEqual(r.valid, [sa])
  })
})

describe('the manifests keep the deployment\'s invariants', () => {
  for (const folder of FOLDERS) {
    test(`${folder}: every container runs non-root, read-only, without capabilities, under RuntimeDefault seccomp`, () => {
      for (const w of workloads(folder)) {
        const spec = podSpec(w)
        assert.equal(spec.securityContext.runAsNonRoot, true)
        assert.ok(Number.isInteger(spec.securityContext.runAsUser) && spec.securityContext.runAsUser > 0)
        assert.equal(spec.securityContext.seccompProfile.type, 'RuntimeDefault')
        assert.equal(spec.automountServiceAccountToken, false)
        for (const c of allContainers(spec)) {
          assert.equal(c.securityContext.readOnlyRootFilesystem, true, c.name)
          assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name)
          assert.deepEqual(c.securityContext.capabilities.drop, ['ALL'], c.name)
          assert.ok(c.resources.requests.cpu !== undefined && c.resources.requests.memory !== undefined && c.resources.limits.memory !== undefined, c.name)
        }
      }
    })

    test(`${folder}: Portcullis's probes are /health/live and /health/ready on its Data API port`, () => {
      for (const w of workloads(folder)) {
        const { text, container: c } = portcullisConfig(folder, w)
        const config = parse(text)
        const port = (c.ports as Obj[]).find((p) => p.containerPort === Number((config.server.addr as string).split(':').pop()))
        assert.ok(port !== undefined, 'server.addr is a container port')
        assert.equal(c.livenessProbe.httpGet.path, '/health/live')
        assert.equal(c.readinessProbe.httpGet.path, '/health/ready')
        for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe]) assert.ok([port.name, port.containerPort].includes(p.httpGet.port))
        // TLS on the Data API exactly when Portcullis serves its SVID there
        const scheme = config.workload_api?.serving_svid === true ? 'HTTPS' : 'HTTP'
        for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe]) assert.equal(p.httpGet.scheme ?? 'HTTP', scheme)
        assert.ok((config.server.addr as string).startsWith('0.0.0.0:'), 'the kubelet probes the Pod address')
      }
    })

    test(`${folder}: the SPIRE agent socket comes from the SPIFFE CSI driver, where the configuration looks for it`, () => {
      for (const w of workloads(folder)) {
        const spec = podSpec(w)
        const { text, container: c } = portcullisConfig(folder, w)
        const config = parse(text)
        const csi = (spec.volumes as Obj[]).filter((v) => v.csi?.driver === 'csi.spiffe.io')
        assert.equal(csi.length, 1)
        assert.equal(csi[0].csi.readOnly, true)
        const mount = (c.volumeMounts as Obj[]).find((m) => m.name === csi[0].name)
        const env = (c.env as Obj[]).find((e) => e.name === 'SPIFFE_ENDPOINT_SOCKET')
        assert.equal(env.value, config.workload_api.socket)
        assert.equal(config.workload_api.enabled, true)
        assert.equal(posix.dirname(new URL(config.workload_api.socket as string).pathname), mount.mountPath)
      }
    })

    test(`${folder}: every path Portcullis writes is on a writable volume, not the read-only root`, () => {
      for (const w of workloads(folder)) {
        const spec = podSpec(w)
        const { text, container: c } = portcullisConfig(folder, w)
        const config = parse(text)
        const writable = (c.volumeMounts as Obj[]).filter((m) => m.readOnly !== true).filter((m) => {
          const v = (spec.volumes as Obj[]).find((x) => x.name === m.name)
          return v.emptyDir !== undefined || v.persistentVolumeClaim !== undefined
        }).map((m) => m.mountPath as string)
        const paths = [config.persistence_directory, config.audit.dir, '/tmp']
        const grpc = config.envoy_ext_authz.grpc.addr as string
        if (grpc.startsWith('unix:')) paths.push(posix.dirname(grpc.slice('unix:'.length)))
        for (const p of paths) assert.ok(writable.some((m) => p === m || (p as string).startsWith(`${m}/`)), `${p as string} on ${writable.join(', ')}`)
      }
    })
  }

  test('central: Service, HPA (autoscaling/v2), PDB (policy/v1), NetworkPolicy over the Deployment\'s pods, spread over zones and nodes', () => {
    const d = one('central', 'Deployment')
    const labels = d.spec.template.metadata.labels
    const matches = (sel: Record<string, string>): boolean => Object.entries(sel).every(([k, v]) => labels[k] === v)
    for (const s of ofKind('central', 'Service')) assert.ok(matches(s.spec.selector), s.metadata.name)
    assert.equal(one('central', 'Service', 'portcullis-grpc').spec.clusterIP, 'None', 'gRPC clients balance per replica over a headless Service')
    const hpa = one('central', 'HorizontalPodAutoscaler')
    assert.equal(hpa.apiVersion, 'autoscaling/v2')
    assert.deepEqual([hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name], ['Deployment', d.metadata.name])
    assert.ok(hpa.spec.minReplicas >= 2)
    assert.equal(d.spec.replicas, undefined, 'the HPA owns the replica count')
    const pdb = one('central', 'PodDisruptionBudget')
    assert.equal(pdb.apiVersion, 'policy/v1')
    assert.ok(matches(pdb.spec.selector.matchLabels))
    const np = one('central', 'NetworkPolicy')
    assert.ok(matches(np.spec.podSelector.matchLabels))
    assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress'])
    const decisionPorts = np.spec.ingress[0].ports.map((p: Obj) => p.port).sort()
    assert.deepEqual(decisionPorts, ['grpc', 'http'])
    assert.ok(np.spec.ingress[0].from.every((f: Obj) => f.namespaceSelector !== undefined))
    assert.ok(np.spec.egress.some((e: Obj) => e.ports.some((p: Obj) => p.port === 53)), 'DNS')
    const keys = d.spec.template.spec.topologySpreadConstraints.map((c: Obj) => c.topologyKey).sort()
    assert.deepEqual(keys, ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'])
    // the ports the configuration listens on are the container's named ports
    const { text, container: c } = portcullisConfig('central', d)
    const config = parse(text)
    const port = (name: string): number => (c.ports as Obj[]).find((p) => p.name === name).containerPort
    assert.equal(Number((config.envoy_ext_authz.grpc.addr as string).split(':').pop()), port('grpc'))
    assert.equal(Number((config.server.addr as string).split(':').pop()), port('http'))
  })

  test('sidecar: Envoy asks Portcullis on the Pod\'s loopback; Portcullis starts first as a native sidecar', () => {
    const d = one('sidecar', 'Deployment')
    const spec = podSpec(d)
    const { text, container: p } = portcullisConfig('sidecar', d)
    const config = parse(text)
    assert.equal(p.restartPolicy, 'Always')
    assert.ok((spec.initContainers as Obj[]).includes(p))
    // loopback: reachable from the containers of this Pod only, and a trusted ext_authz caller
    const grpc = config.envoy_ext_authz.grpc.addr as string
    assert.match(grpc, /^127\.0\.0\.1:\d+$/)
    assert.ok((p.ports as Obj[]).some((x) => x.containerPort === Number(grpc.split(':')[1])))
    const bootstrap = parse(one('sidecar', 'ConfigMap', 'orders-envoy').data['envoy.yaml'])
    const cluster = bootstrap.static_resources.clusters.find((c: Obj) => c.name === 'portcullis_ext_authz')
    const a = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert.equal(`${a.address as string}:${a.port_value as number}`, grpc)
    assert.equal(bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.grpc_service.envoy_grpc.cluster_name, 'portcullis_ext_authz')
    const agent = bootstrap.static_resources.clusters.find((c: Obj) => c.name === 'spire_agent')
    assert.equal(`unix://${agent.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path as string}`, config.workload_api.socket)
    // Envoy mounts the agent socket too (SDS)
    const envoy = (spec.containers as Obj[]).find((c) => c.name === 'envoy')
    assert.ok((envoy.volumeMounts as Obj[]).some((m) => m.mountPath === posix.dirname(agent.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path)))
  })
})

describe('the sidecar\'s Envoy bootstrap (ConfigMap orders-envoy)', needsEnvoyValidate(), () => {
  test('is valid against Envoy\'s v3 API (tools/envoy-validate)', (t) => {
    const file = join(tempDir(t), 'envoy.yaml')
    writeFileSync(file, one('sidecar', 'ConfigMap', 'orders-envoy').data['envoy.yaml'])
    const r = runEnvoyValidate([file])
    assert.deepEqual(r.problems, [])
    assert.equal(r.status, 0)
  })
})

describe('the Portcullis configuration in the ConfigMaps loads with Portcullis\'s loader', () => {
  // Keys of this configuration come from three parallel pieces of work (issue 14: the Workload
  // API client, bundle-server downloads, the audit log and decision-log shipping); until all
  // have landed the loader rejects theirs (PORTCULLIS_CONFIG_INVALID names them).
  for (const folder of FOLDERS) {
    for (const w of workloads(folder)) {
      test(`${folder}/${w.metadata.name as string}`, (t) => {
        const file = join(tempDir(t), 'portcullis.yaml')
        writeFileSync(file, portcullisConfig(folder, w).text)
        try {
          const config = loadConfig({ file, env: {} })
          assert.equal(config.envoy_ext_authz.grpc.enabled, true)
          assert.equal(config.identity?.on_missing, 'deny')
        } catch (err) {
          if (err instanceof PortcullisError) assert.fail(`${err.code}: ${err.message}`)
          throw err
        }
      })
    }
  }
})
