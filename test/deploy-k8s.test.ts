// deploy/k8s: the kustomize build parses, every object matches the Kubernetes (and Prometheus
// Operator) OpenAPI schema for its kind, and the pieces agree with each other and with the gateway:
// probes, drain timing, sizing, selectors, the HPA metric and the rules.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import YAML from 'yaml';
import { loadConfig } from '../src/config/load';
import { openApiRefusal } from '../src/guard/api-exposure';

const ROOT = path.join(__dirname, '..', '..');
const K8S = path.join(ROOT, 'deploy', 'k8s');

type Obj = Record<string, unknown>;
const isRecord = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const rec = (v: unknown, what: string): Obj => {
  assert.ok(isRecord(v), `${what} is an object`);
  return v;
};
const arr = (v: unknown, what: string): unknown[] => {
  assert.ok(Array.isArray(v), `${what} is a list`);
  return v;
};

/**
 * Schema validators by apiVersion/kind (generated from the Kubernetes and Operator OpenAPI specs).
 * Constructor parameters are typed `never` because the objects are untyped YAML: checking them
 * against the schema is the point.
 */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

function kustomizeBuild(): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', K8S], { encoding: 'utf8' });
  if (r.error) throw new Error(`kubectl is needed for "kubectl kustomize" (${r.error.message}); it is in the machine image, or install kustomize`);
  assert.equal(r.status, 0, r.stderr);
  const docs = YAML.parseAllDocuments(r.stdout);
  for (const d of docs) assert.deepEqual(d.errors, []);
  return docs.map((d) => rec(d.toJS(), 'document'));
}

const built = kustomizeBuild();
const one = (kind: string): Obj => {
  const found = built.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0];
};
const at = (o: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((v, k) => (isRecord(v) ? v[k] : undefined), o);

const deployment = one('Deployment');
const podSpec = rec(at(deployment, 'spec', 'template', 'spec'), 'pod spec');
const podLabels = rec(at(deployment, 'spec', 'template', 'metadata', 'labels'), 'pod labels');
const container = rec(arr(podSpec.containers, 'containers')[0], 'container');
const env = Object.fromEntries(Object.entries(rec(one('ConfigMap').data, 'ConfigMap data')).map(([k, v]) => [k, String(v)]));
const envInt = (name: string): number => {
  assert.match(env[name] ?? '', /^\d+$/, `${name} in the ConfigMap`);
  return Number(env[name]);
};

/** Bytes of a Kubernetes memory quantity (the forms used here). */
function bytes(q: unknown): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(String(q));
  assert.ok(m, `memory quantity ${String(q)}`);
  const unit = new Map([['Ki', 1024], ['Mi', 1024 ** 2], ['Gi', 1024 ** 3]]).get(m[2] ?? '') ?? 1;
  return Number(m[1]) * unit;
}

const matches = (selector: unknown, labels: Obj) =>
  Object.entries(rec(selector, 'selector')).every(([k, v]) => labels[k] === v);

describe('deploy/k8s kustomize build', () => {
  it('builds, and lists every manifest file of the folder', () => {
    const listed = arr(rec(YAML.parse(readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8')), 'kustomization').resources, 'resources');
    const files = readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    assert.deepEqual([...listed].sort(), files.sort());
    assert.deepEqual(built.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Namespace', 'PodDisruptionBudget', 'PodMonitor', 'PrometheusRule', 'Service']);
  });

  it('every object matches the schema of its kind', () => {
    for (const o of built) {
      const key = `${String(o.apiVersion)}/${String(o.kind)}`;
      const Model = MODELS[key];
      assert.ok(Model, `no schema validator for ${key}: add one to MODELS`);
      assert.doesNotThrow(() => new Model(o as never).validate(), `${key} ${String(at(o, 'metadata', 'name'))}`);
    }
  });

  it('the schema check rejects a wrong field type (the validator is live)', () => {
    const broken = structuredClone(deployment);
    rec(arr(at(broken, 'spec', 'template', 'spec', 'containers'), 'containers')[0], 'container').ports = [{ containerPort: 'http' }];
    assert.throws(() => new Deployment(broken as never).validate(), /containerPort/);
  });
});

describe('deploy/k8s Deployment', () => {
  it('readiness on /readyz, liveness on /healthz, on the admin listener\'s named port; the public port is http', () => {
    assert.equal(at(container, 'readinessProbe', 'httpGet', 'path'), '/readyz');
    assert.equal(at(container, 'livenessProbe', 'httpGet', 'path'), '/healthz');
    const ports = arr(container.ports, 'ports').map((p) => rec(p, 'port'));
    const http = ports.find((p) => p.name === 'http');
    assert.ok(http, 'a container port named http');
    assert.equal(http.containerPort, envInt('WSGATE_PORT'));
    const admin = ports.find((p) => p.name === 'admin');
    assert.ok(admin, 'a container port named admin');
    assert.equal(admin.containerPort, envInt('WSGATE_ADMIN_PORT'));
    assert.equal(env.WSGATE_ADMIN_HOST, '0.0.0.0', 'kubelet probes and Prometheus reach the pod IP');
    assert.equal(at(container, 'readinessProbe', 'httpGet', 'port'), 'admin');
    assert.equal(at(container, 'livenessProbe', 'httpGet', 'port'), 'admin');
  });

  it('the gateway would start: the API key comes from a Secret, so the admin API is never open', () => {
    const vars = arr(container.env, 'env').map((e) => rec(e, 'env var'));
    const key = vars.find((v) => v.name === 'WSGATE_API_KEY');
    assert.ok(key, 'WSGATE_API_KEY is set');
    assert.equal(at(key, 'valueFrom', 'secretKeyRef', 'name'), 'wsgate-api-key');
    assert.equal(openApiRefusal(loadConfig({ argv: [], env: { ...env, WSGATE_API_KEY: 'from-the-secret' } })), null);
    assert.notEqual(openApiRefusal(loadConfig({ argv: [], env })), null, 'without the Secret it would refuse');
  });

  it('terminationGracePeriodSeconds outlasts the preStop sleep plus the drain timeout', () => {
    const preStop = arr(at(container, 'lifecycle', 'preStop', 'exec', 'command'), 'preStop command');
    assert.equal(preStop[0], 'sleep');
    const sleepMs = Number(preStop[1]) * 1000;
    const drainWindow = envInt('WSGATE_DRAIN_WINDOW');
    const drainTimeout = envInt('WSGATE_DRAIN_TIMEOUT');
    assert.ok(drainWindow < drainTimeout, 'the 1012 closes are spread over less than the hard deadline');
    const graceMs = Number(podSpec.terminationGracePeriodSeconds) * 1000;
    assert.ok(graceMs > sleepMs + drainTimeout, `grace ${graceMs} ms > preStop ${sleepMs} ms + drain timeout ${drainTimeout} ms`);
  });

  it('rolls one surge pod at a time and never below the desired count', () => {
    assert.equal(at(deployment, 'spec', 'strategy', 'type'), 'RollingUpdate');
    assert.equal(at(deployment, 'spec', 'strategy', 'rollingUpdate', 'maxUnavailable'), 0);
    assert.equal(at(deployment, 'spec', 'strategy', 'rollingUpdate', 'maxSurge'), 1);
  });

  it('runs non-root with a read-only root filesystem and no privileges', () => {
    assert.equal(at(podSpec, 'securityContext', 'runAsNonRoot'), true);
    assert.ok(Number(at(podSpec, 'securityContext', 'runAsUser')) > 0);
    assert.equal(at(container, 'securityContext', 'readOnlyRootFilesystem'), true);
    assert.equal(at(container, 'securityContext', 'allowPrivilegeEscalation'), false);
    assert.deepEqual(at(container, 'securityContext', 'capabilities', 'drop'), ['ALL']);
    assert.equal(podSpec.automountServiceAccountToken, false);
  });

  it('memory is sized from bytes per connection, history and backpressure headroom (deploy/README.md, Sizing)', () => {
    const requests = rec(at(container, 'resources', 'requests'), 'requests');
    const limits = rec(at(container, 'resources', 'limits'), 'limits');
    for (const r of [requests, limits]) {
      assert.ok(r.cpu !== undefined && r.memory !== undefined, 'cpu and memory set');
    }
    // Request = limit: an OOM kill or eviction drops every connection of the pod at once.
    assert.equal(bytes(requests.memory), bytes(limits.memory));
    const MiB = 1024 ** 2;
    const base = 80 * MiB;
    const perIdleConnection = 1200;
    const backloggedShare = 0.2;
    const n = envInt('WSGATE_MAX_CONNECTIONS');
    const need =
      base + n * perIdleConnection + envInt('WSGATE_HISTORY_MAX_BYTES') * 1.25 + backloggedShare * n * envInt('WSGATE_MAX_BACKPRESSURE');
    const limit = bytes(limits.memory);
    assert.ok(limit >= need, `memory limit ${limit / MiB} MiB >= ${Math.ceil(need / MiB)} MiB`);
    assert.ok(limit <= need * 1.5, `memory limit ${limit / MiB} MiB is not oversized against ${Math.ceil(need / MiB)} MiB`);
  });

  it('the ConfigMap environment is accepted by the gateway and names only real settings', () => {
    assert.doesNotThrow(() => loadConfig({ argv: [], env }));
    const config = loadConfig({ argv: [], env });
    assert.equal(config.maxConnections, envInt('WSGATE_MAX_CONNECTIONS'));
    const known = new Set(Object.keys(config).map((k) => 'WSGATE_' + k.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()));
    assert.deepEqual(Object.keys(env).filter((k) => !known.has(k)), []);
  });

  it('more than one replica requires a shared broker', () => {
    const floor = Math.max(Number(at(deployment, 'spec', 'replicas')), Number(at(one('HorizontalPodAutoscaler'), 'spec', 'minReplicas')));
    assert.ok(floor > 1);
    assert.match(env.WSGATE_BROKER ?? 'memory', /^(nats|redis|rediss):\/\//);
  });
});

describe('deploy/k8s Service, PodDisruptionBudget, HPA, PodMonitor, PrometheusRule', () => {
  it('the Service selects the pods, targets the http port and is not sticky', () => {
    const spec = rec(one('Service').spec, 'service spec');
    assert.ok(matches(spec.selector, podLabels));
    assert.equal(spec.sessionAffinity, 'None');
    assert.ok(arr(spec.ports, 'ports').every((p) => at(p, 'targetPort') === 'http'));
  });

  it('the PodDisruptionBudget selects the pods and allows one voluntary disruption at a time', () => {
    const spec = rec(one('PodDisruptionBudget').spec, 'pdb spec');
    assert.ok(matches(at(spec, 'selector', 'matchLabels'), podLabels));
    assert.equal(spec.maxUnavailable, 1);
  });

  it('the HPA scales the Deployment on wsgate_connections below the per-pod limit and scales in slowly', () => {
    const spec = rec(one('HorizontalPodAutoscaler').spec, 'hpa spec');
    assert.equal(at(spec, 'scaleTargetRef', 'name'), at(deployment, 'metadata', 'name'));
    const pods = arr(spec.metrics, 'metrics').map((m) => rec(m, 'metric')).find((m) => m.type === 'Pods');
    assert.equal(at(pods, 'pods', 'metric', 'name'), 'wsgate_connections');
    const target = Number(at(pods, 'pods', 'target', 'averageValue'));
    assert.ok(target > 0 && target < envInt('WSGATE_MAX_CONNECTIONS'), 'scales out before pods hit the connection limit');
    const down = arr(at(spec, 'behavior', 'scaleDown', 'policies'), 'scaleDown policies').map((p) => rec(p, 'policy'));
    assert.ok(down.every((p) => p.type === 'Pods' && Number(p.value) === 1), 'scale-in drains one pod per period');
  });

  it('the PodMonitor scrapes /metrics on the admin port of the pods, as job "wsgate"', () => {
    const spec = rec(one('PodMonitor').spec, 'podmonitor spec');
    assert.ok(matches(at(spec, 'selector', 'matchLabels'), podLabels));
    assert.equal(podLabels[String(spec.jobLabel)], 'wsgate', 'the rules select job="wsgate"');
    const ep = rec(arr(spec.podMetricsEndpoints, 'endpoints')[0], 'endpoint');
    assert.equal(ep.port, 'admin');
    assert.equal(ep.path, '/metrics');
  });

  it('the PrometheusRule carries exactly the groups of deploy/prometheus/rules', () => {
    const dir = path.join(ROOT, 'deploy', 'prometheus', 'rules');
    const groups = readdirSync(dir)
      .filter((f) => f.endsWith('.yml'))
      .sort()
      .flatMap((f) => arr(rec(YAML.parse(readFileSync(path.join(dir, f), 'utf8')), f).groups, f));
    const key = (g: unknown) => String(at(g, 'name'));
    const shipped = arr(at(one('PrometheusRule'), 'spec', 'groups'), 'groups');
    assert.deepEqual(
      [...shipped].sort((a, b) => key(a).localeCompare(key(b))),
      [...groups].sort((a, b) => key(a).localeCompare(key(b))),
      'deploy/k8s/prometheusrule.yaml is out of step with deploy/prometheus/rules/*.yml: copy the groups over',
    );
  });
});
