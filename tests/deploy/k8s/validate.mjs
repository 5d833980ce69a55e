// validate.mjs: checks rendered Kubernetes manifests (`kubectl kustomize deploy/k8s`, one
// collector on SQLite, or `kubectl kustomize deploy/k8s/scale-out`, replicas on PostgreSQL: a
// set with a Deployment is checked as the fleet's).
//
//   kubectl kustomize deploy/k8s | node validate.mjs -     # or: node validate.mjs FILE
//   node validate.mjs --selftest FILE                      # the checks reject broken copies of FILE
//
// Each document is validated against the JSON schema of its apiVersion and kind from
// kubernetes-models (generated from the OpenAPI spec of a current Kubernetes release; the
// version is pinned by package-lock.json): types, required fields, enums, formats such as
// quantities.  Those schemas allow unknown fields, so a misspelt optional field passes them;
// the errq checks below then require each field errq's deployment depends on.  Exits 0 when
// every document passes, 1 otherwise, with one line per problem.
import { readFileSync } from "node:fs";
import { parseAllDocuments, parse } from "yaml";

// The Kubernetes schema errors of one object, as "Kind/name: path message" lines.
async function schemaErrors(obj) {
  const where = `${obj?.kind ?? "?"}/${obj?.metadata?.name ?? "?"}`;
  if (typeof obj?.apiVersion !== "string" || typeof obj?.kind !== "string")
    return [`${where}: no apiVersion or kind`];
  if (!/^[A-Za-z0-9.]+(\/[A-Za-z0-9]+)?$/.test(obj.apiVersion) || !/^[A-Za-z]+$/.test(obj.kind))
    return [`${where}: bad apiVersion '${obj.apiVersion}' or kind '${obj.kind}'`];
  let mod;
  try {
    mod = await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`);
  } catch {
    return [`${where}: no schema for apiVersion '${obj.apiVersion}' kind '${obj.kind}'`];
  }
  const Model = mod[obj.kind];
  // kustomize folds a Secret's base64 longer than 70 characters into lines; the API server's
  // decoder (Go's encoding/base64) skips the newlines, the schema's "byte" format does not
  if (obj.kind === "Secret" && obj.data)
    obj = { ...obj, data: Object.fromEntries(Object.entries(obj.data).map(([k, v]) =>
      [k, typeof v === "string" ? v.replace(/[\r\n]/g, "") : v])) };
  try {
    new Model(obj).validate();
  } catch (e) {
    const errs = e.errors ?? [];
    if (errs.length === 0) return [`${where}: ${e.message}`];
    return errs.map((x) => `${where}: ${x.instancePath || "/"} ${x.message}`);
  }
  return [];
}

// Seconds of a duration setting ("8s", "250ms", "2m"); NaN when it is not one.
function seconds(d) {
  const m = /^(\d+)(ms|s|m|h)$/.exec(String(d));
  if (!m) return NaN;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}

// The checks of the collector's pod that both sets share (a StatefulSet's or a Deployment's
// template): its container, ports, probes, resources, security, and the config it mounts.
// Returns the container's named ports and the parsed config (null when missing).
function podErrors(w, fail, errs, byKind) {
  const spec = w.spec ?? {};
  const pod = spec.template?.spec ?? {};
  const c = (pod.containers ?? []).find((x) => x.name === "errqd");
  if (!c) {
    fail("no container 'errqd'");
    return { ports: {}, cfg: null, c: null, pod };
  }
  const ports = Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));
  if (ports.grpc !== 4770 || ports.http !== 4771)
    fail(`container ports grpc/http are ${ports.grpc}/${ports.http}, want 4770/4771`);
  const probe = (p, path) =>
    p?.httpGet?.path === path && (p.httpGet.port === "http" || p.httpGet.port === 4771);
  if (!probe(c.livenessProbe, "/livez")) fail("livenessProbe is not GET /livez on port http");
  if (!probe(c.readinessProbe, "/readyz")) fail("readinessProbe is not GET /readyz on port http");
  for (const k of ["requests", "limits"])
    for (const r of ["cpu", "memory"])
      if (c.resources?.[k]?.[r] === undefined) fail(`no resources.${k}.${r}`);
  const psc = pod.securityContext ?? {};
  if (psc.runAsNonRoot !== true) fail("pod securityContext.runAsNonRoot is not true");
  if (c.securityContext?.readOnlyRootFilesystem !== true) fail("readOnlyRootFilesystem is not true");
  if (c.securityContext?.allowPrivilegeEscalation !== false) fail("allowPrivilegeEscalation is not false");

  // the config the pod mounts exists in the set and is errqd's, and the drain fits the grace
  const cfgVol = (pod.volumes ?? []).find((v) =>
    (c.volumeMounts ?? []).some((m) => m.name === v.name && m.mountPath === "/etc/errq"));
  const cm = byKind("ConfigMap").find((m) => m.metadata?.name === cfgVol?.configMap?.name);
  if (!cm?.data?.["errqd.yaml"]) {
    fail("/etc/errq is not mounted from a ConfigMap of this set with an errqd.yaml");
    return { ports, cfg: null, c, pod };
  }
  const cfg = parse(cm.data["errqd.yaml"]) ?? {};
  const drain = seconds(cfg.shutdown_timeout ?? "8s");
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  if (!(grace > drain))
    fail(`terminationGracePeriodSeconds ${grace} is not longer than shutdown_timeout ${drain} s`);
  for (const [k, want] of [["listen", ":4770"], ["http_listen", ":4771"]])
    if (!String(cfg[k] ?? "").startsWith("0.0.0.0") || !String(cfg[k]).endsWith(want))
      errs.push(`ConfigMap/${cm.metadata.name}: ${k} '${cfg[k]}' is not 0.0.0.0${want}`);
  cfg.__name = cm.metadata.name;
  return { ports, cfg, c, pod };
}

// The Service reaches the pods: its selector matches the template, its ports are named.
function serviceErrors(v, w, ports, errs) {
  const labels = w.spec?.template?.metadata?.labels ?? {};
  const sel = v.spec?.selector ?? {};
  if (Object.keys(sel).length === 0 || Object.entries(sel).some(([k, x]) => labels[k] !== x))
    errs.push(`Service/${v.metadata?.name}: selector does not match the ${w.kind}'s pods`);
  for (const name of ["grpc", "http"]) {
    const p = (v.spec?.ports ?? []).find((x) => x.name === name);
    if (!p || (p.targetPort !== name && p.targetPort !== ports[name]))
      errs.push(`Service/${v.metadata?.name}: no port '${name}' to the container's '${name}'`);
  }
}

// The set's one workload of KIND and one Service, the errors so far, and fail(), which names
// the workload; or { early: [...] } when the set has not exactly one of each.
function oneOf(kind, byKind) {
  const ws = byKind(kind);
  const svc = byKind("Service");
  if (ws.length !== 1) return { early: [`want one ${kind}, got ${ws.length}`] };
  if (svc.length !== 1) return { early: [`want one Service, got ${svc.length}`] };
  const errs = [];
  const w = ws[0];
  return { w, v: svc[0], spec: w.spec ?? {}, errs, fail: (msg) => errs.push(`${kind}/${w.metadata?.name}: ${msg}`) };
}

// deploy/k8s: one collector on SQLite (docs in deploy/k8s/*.yaml).
function oneErrors(objs, byKind) {
  const o = oneOf("StatefulSet", byKind);
  if (o.early) return o.early;
  const { w: s, v, spec, errs, fail } = o;
  if (spec.replicas !== 1) fail(`replicas is ${spec.replicas}: errqd is the one writer of its database`);
  const { ports, cfg, c } = podErrors(s, fail, errs, byKind);
  if (!c) return errs;
  const claims = (spec.volumeClaimTemplates ?? []).map((t) => t.metadata?.name);
  const dataMount = (c.volumeMounts ?? []).find((m) => m.mountPath === "/var/lib/errq");
  if (!dataMount || !claims.includes(dataMount.name))
    fail("/var/lib/errq is not mounted from a volumeClaimTemplate");
  if (cfg && !String(cfg.database ?? "").startsWith("/var/lib/errq/"))
    errs.push(`ConfigMap/${cfg.__name}: database '${cfg.database}' is not on the volume`);
  serviceErrors(v, s, ports, errs);
  if (spec.serviceName !== v.metadata?.name) fail(`serviceName '${spec.serviceName}' is not the Service`);
  return errs;
}

// deploy/k8s/scale-out: N replicas on PostgreSQL (docs/scale-out.md).
function fleetErrors(objs, byKind) {
  const o = oneOf("Deployment", byKind);
  if (o.early) return o.early;
  const { w: d, v, spec, errs, fail } = o;
  if (byKind("StatefulSet").length) errs.push("a StatefulSet beside the Deployment: the replicas keep no state");
  if (!(spec.replicas >= 2)) fail(`replicas is ${spec.replicas}: a fleet has at least 2`);
  const { ports, cfg, c, pod } = podErrors(d, fail, errs, byKind);
  if (!c) return errs;
  // nothing of its own to keep: no claim, no volume but ConfigMaps, Secrets and emptyDirs
  for (const v of pod.volumes ?? [])
    if (v.persistentVolumeClaim || v.ephemeral || v.hostPath)
      fail(`volume '${v.name}' is storage: replicas keep their data in PostgreSQL only`);
  // the database: ERRQ_DATABASE from a Secret of this set, never the ConfigMap or a literal
  const env = (c.env ?? []).find((e) => e.name === "ERRQ_DATABASE");
  const ref = env?.valueFrom?.secretKeyRef;
  const secret = byKind("Secret").find((x) => x.metadata?.name === ref?.name);
  if (!ref) fail("ERRQ_DATABASE does not come from a Secret (env valueFrom.secretKeyRef)");
  else if (!secret) fail(`ERRQ_DATABASE's Secret '${ref.name}' is not in this set`);
  else {
    const b64 = secret.data?.[ref.key];
    const url = b64 !== undefined ? Buffer.from(b64, "base64").toString() : secret.stringData?.[ref.key];
    if (!/^postgres(ql)?:\/\//.test(url ?? ""))
      errs.push(`Secret/${ref.name}: key '${ref.key}' is not a postgres:// URL`);
  }
  if (cfg) {
    if (cfg.database !== undefined)
      errs.push(`ConfigMap/${cfg.__name}: database is set in the ConfigMap: it comes from the Secret`);
    if (cfg.storage !== "postgres")
      errs.push(`ConfigMap/${cfg.__name}: storage is '${cfg.storage}', not postgres (a replica without the Secret would start on SQLite)`);
    if (!Array.isArray(cfg.rules) || cfg.rules.length === 0)
      errs.push(`ConfigMap/${cfg.__name}: no rules: every replica loads the same rules`);
  }
  // headless, and only ready pods in its answer
  if (v.spec?.clusterIP !== "None")
    errs.push(`Service/${v.metadata?.name}: clusterIP is '${v.spec?.clusterIP}', not None: a virtual IP balances connections, not load`);
  if (v.spec?.publishNotReadyAddresses === true)
    errs.push(`Service/${v.metadata?.name}: publishNotReadyAddresses sends clients to replicas that cannot commit`);
  serviceErrors(v, d, ports, errs);
  // a drain takes at most some replicas, and the budget covers these pods
  const pdb = byKind("PodDisruptionBudget");
  const labels = spec.template?.metadata?.labels ?? {};
  const covers = pdb.find((p) => {
    const m = p.spec?.selector?.matchLabels ?? {};
    return Object.keys(m).length && Object.entries(m).every(([k, x]) => labels[k] === x);
  });
  if (!covers) errs.push(`no PodDisruptionBudget selects the Deployment's pods`);
  else if (covers.spec?.maxUnavailable === undefined && covers.spec?.minAvailable === undefined)
    errs.push(`PodDisruptionBudget/${covers.metadata?.name}: neither maxUnavailable nor minAvailable`);
  return errs;
}

// What errq's deployment needs of the rendered set: the one-collector set or the fleet's.
function errqErrors(objs) {
  const byKind = (k) => objs.filter((o) => o?.kind === k);
  return byKind("Deployment").length ? fleetErrors(objs, byKind) : oneErrors(objs, byKind);
}

async function check(objs) {
  const errs = [];
  for (const o of objs) errs.push(...(await schemaErrors(o)));
  errs.push(...errqErrors(objs));
  return errs;
}

// Broken copies of a good set: every one must be rejected, by the check that names it.  The
// first cases break any set (through its workload, the StatefulSet or the Deployment); the
// others, what the one-collector set or the fleet's must hold.
async function selftest(good) {
  const wl = (o) => o.find((x) => x.kind === "StatefulSet" || x.kind === "Deployment");
  const ctr = (o) => wl(o).spec.template.spec.containers[0];
  const svc = (o) => o.find((x) => x.kind === "Service");
  const cm = (o, edit) => {
    const m = o.find((x) => x.kind === "ConfigMap");
    m.data["errqd.yaml"] = edit(m.data["errqd.yaml"]);
  };
  const common = [
    ["schema: containerPort as a string", "containerPort must be integer",
      (o) => { ctr(o).ports[0].containerPort = "4770"; }],
    ["schema: workload without selector", "selector",
      (o) => { delete wl(o).spec.selector; }],
    ["schema: bad memory quantity", "resources",
      (o) => { ctr(o).resources.limits.memory = "384 MB"; }],
    ["schema: unknown kind", "no schema",
      (o) => { o.push({ apiVersion: "v1", kind: "Servic", metadata: { name: "x" } }); }],
    ["errq: no liveness probe", "livenessProbe", (o) => { delete ctr(o).livenessProbe; }],
    ["errq: grace shorter than the drain", "terminationGracePeriodSeconds",
      (o) => { wl(o).spec.template.spec.terminationGracePeriodSeconds = 5; }],
    ["errq: misspelt Service selector", "selector",
      (o) => { const s = svc(o).spec; s.selectr = s.selector; delete s.selector; }],
  ];
  const one = [
    ["errq: two replicas", "replicas", (o) => { wl(o).spec.replicas = 2; }],
  ];
  const fleet = [
    ["errq: one replica", "replicas", (o) => { wl(o).spec.replicas = 1; }],
    ["errq: a volume claim", "replicas keep their data in PostgreSQL",
      (o) => { wl(o).spec.template.spec.volumes.push({ name: "data", persistentVolumeClaim: { claimName: "data" } }); }],
    ["errq: the URL as a literal", "ERRQ_DATABASE does not come from a Secret",
      (o) => { const e = ctr(o).env.find((x) => x.name === "ERRQ_DATABASE"); delete e.valueFrom; e.value = "postgres://errq:pw@db/errq"; }],
    ["errq: the URL's Secret missing", "is not in this set",
      (o) => { o.splice(o.findIndex((x) => x.kind === "Secret" && x.data?.ERRQ_DATABASE), 1); }],
    ["errq: the URL in the ConfigMap", "database is set in the ConfigMap",
      (o) => { cm(o, (t) => `${t}\ndatabase: "postgres://errq:pw@db/errq"\n`); }],
    ["errq: no storage: postgres", "not postgres",
      (o) => { cm(o, (t) => t.replace(/^storage: postgres$/m, "")); }],
    ["errq: no rules", "no rules", (o) => { cm(o, (t) => t.replace(/^rules:[^]*$/m, "")); }],
    ["errq: a ClusterIP Service", "not None", (o) => { svc(o).spec.clusterIP = "10.0.0.1"; }],
    ["errq: no PodDisruptionBudget", "PodDisruptionBudget",
      (o) => { o.splice(o.findIndex((x) => x.kind === "PodDisruptionBudget"), 1); }],
  ];
  const cases = [...common, ...(wl(good)?.kind === "Deployment" ? fleet : one)];
  let bad = 0;
  const base = await check(good);
  if (base.length) {
    console.error(`selftest: the good set fails:\n${base.join("\n")}`);
    return 1;
  }
  for (const [name, want, breakIt] of cases) {
    const objs = structuredClone(good);
    breakIt(objs);
    const errs = await check(objs);
    if (!errs.some((e) => e.includes(want))) {
      console.error(`selftest: '${name}' not rejected (want '${want}'): ${errs.join("; ") || "no error"}`);
      bad++;
    } else {
      console.log(`selftest: '${name}' rejected: ${errs.find((e) => e.includes(want))}`);
    }
  }
  return bad ? 1 : 0;
}

function load(file) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  const docs = parseAllDocuments(text);
  for (const d of docs) if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS()).filter((o) => o !== null);
}

const args = process.argv.slice(2);
if (args.length === 2 && args[0] === "--selftest") {
  process.exit(await selftest(load(args[1])));
} else if (args.length === 1 && !args[0].startsWith("--")) {
  const objs = load(args[0]);
  const errs = await check(objs);
  for (const e of errs) console.error(e);
  if (!errs.length)
    for (const o of objs) console.log(`ok: ${o.apiVersion} ${o.kind}/${o.metadata?.name}`);
  process.exit(errs.length ? 1 : 0);
} else {
  console.error("usage: node validate.mjs FILE|-   or   node validate.mjs --selftest FILE");
  process.exit(2);
}
