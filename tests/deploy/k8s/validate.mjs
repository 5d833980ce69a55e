// validate.mjs: checks rendered Kubernetes manifests (`kubectl kustomize deploy/k8s`).
//
//   kubectl kustomize deploy/k8s | node validate.mjs -     # or: node validate.mjs FILE
//   node validate.mjs --selftest                           # the checks reject broken objects
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

// What errq's deployment needs of the rendered set (docs in deploy/k8s/*.yaml).
function errqErrors(objs) {
  const errs = [];
  const byKind = (k) => objs.filter((o) => o?.kind === k);
  const sts = byKind("StatefulSet");
  const svc = byKind("Service");
  if (sts.length !== 1) return [`want one StatefulSet, got ${sts.length}`];
  if (svc.length !== 1) return [`want one Service, got ${svc.length}`];
  const s = sts[0];
  const spec = s.spec ?? {};
  const pod = spec.template?.spec ?? {};
  const c = (pod.containers ?? []).find((x) => x.name === "errqd");
  const fail = (msg) => errs.push(`StatefulSet/${s.metadata?.name}: ${msg}`);
  if (spec.replicas !== 1) fail(`replicas is ${spec.replicas}: errqd is the one writer of its database`);
  const claims = (spec.volumeClaimTemplates ?? []).map((t) => t.metadata?.name);
  if (!c) return [...errs, `StatefulSet/${s.metadata?.name}: no container 'errqd'`];
  const dataMount = (c.volumeMounts ?? []).find((m) => m.mountPath === "/var/lib/errq");
  if (!dataMount || !claims.includes(dataMount.name))
    fail("/var/lib/errq is not mounted from a volumeClaimTemplate");
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
  } else {
    const cfg = parse(cm.data["errqd.yaml"]) ?? {};
    const drain = seconds(cfg.shutdown_timeout ?? "8s");
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    if (!(grace > drain))
      fail(`terminationGracePeriodSeconds ${grace} is not longer than shutdown_timeout ${drain} s`);
    for (const [k, want] of [["listen", ":4770"], ["http_listen", ":4771"]])
      if (!String(cfg[k] ?? "").startsWith("0.0.0.0") || !String(cfg[k]).endsWith(want))
        errs.push(`ConfigMap/${cm.metadata.name}: ${k} '${cfg[k]}' is not 0.0.0.0${want}`);
    if (!String(cfg.database ?? "").startsWith("/var/lib/errq/"))
      errs.push(`ConfigMap/${cm.metadata.name}: database '${cfg.database}' is not on the volume`);
  }

  // the Service reaches the pod: its selector matches the template, its ports are named
  const v = svc[0];
  const labels = spec.template?.metadata?.labels ?? {};
  const sel = v.spec?.selector ?? {};
  if (Object.keys(sel).length === 0 || Object.entries(sel).some(([k, x]) => labels[k] !== x))
    errs.push(`Service/${v.metadata?.name}: selector does not match the StatefulSet's pods`);
  for (const name of ["grpc", "http"]) {
    const p = (v.spec?.ports ?? []).find((x) => x.name === name);
    if (!p || (p.targetPort !== name && p.targetPort !== ports[name]))
      errs.push(`Service/${v.metadata?.name}: no port '${name}' to the container's '${name}'`);
  }
  if (spec.serviceName !== v.metadata?.name) fail(`serviceName '${spec.serviceName}' is not the Service`);
  return errs;
}

async function check(objs) {
  const errs = [];
  for (const o of objs) errs.push(...(await schemaErrors(o)));
  errs.push(...errqErrors(objs));
  return errs;
}

// Broken copies of a good set: every one must be rejected, by the check that names it.
async function selftest(good) {
  const cases = [
    ["schema: containerPort as a string", "containerPort must be integer",
      (o) => { sts(o).spec.template.spec.containers[0].ports[0].containerPort = "4770"; }],
    ["schema: StatefulSet without selector", "selector",
      (o) => { delete sts(o).spec.selector; }],
    ["schema: bad memory quantity", "resources",
      (o) => { sts(o).spec.template.spec.containers[0].resources.limits.memory = "384 MB"; }],
    ["schema: unknown kind", "no schema",
      (o) => { o.push({ apiVersion: "v1", kind: "Servic", metadata: { name: "x" } }); }],
    ["errq: two replicas", "replicas", (o) => { sts(o).spec.replicas = 2; }],
    ["errq: no liveness probe", "livenessProbe",
      (o) => { delete sts(o).spec.template.spec.containers[0].livenessProbe; }],
    ["errq: grace shorter than the drain", "terminationGracePeriodSeconds",
      (o) => { sts(o).spec.template.spec.terminationGracePeriodSeconds = 5; }],
    ["errq: misspelt Service selector", "selector",
      (o) => { const s = o.find((x) => x.kind === "Service").spec; s.selectr = s.selector; delete s.selector; }],
  ];
  const sts = (o) => o.find((x) => x.kind === "StatefulSet");
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
