#!/usr/bin/env python3
"""compose_scale_out.py: errq's checks of deploy/compose.scale-out.yaml as Compose resolves it.

    docker-compose -f deploy/compose.scale-out.yaml config >FILE
    python3 compose_scale_out.py FILE              # exit 0 when it holds, 1 with one line a problem
    python3 compose_scale_out.py --selftest FILE   # broken copies of FILE are rejected

`docker-compose config` has checked the Compose schema and merged the env file into each
service's environment; this checks what the scale-out needs (docs/scale-out.md): a PostgreSQL
service with a healthcheck; three collectors (the services that mount errqd's config) on one
database: the same ERRQ_DATABASE, a postgres:// URL whose host, user, password and database are
the postgres service's; each with its own published ports, a healthcheck, and depends_on the
database healthy.  PyYAML is docker-compose's own dependency.
"""
import copy
import sys
import urllib.parse

import yaml

COLLECTORS = 3
CONFIG_MOUNT = ":/etc/errq/errqd.yaml"


def collectors(services):
    """The services that run errqd: those that mount its config file."""
    return {name: s for name, s in services.items()
            if any(str(v).split(":ro")[0].endswith(CONFIG_MOUNT) for v in s.get("volumes") or [])}


def host_ports(s):
    """The host side of each published port ("127.0.0.1:4772:4770/tcp" -> "127.0.0.1:4772")."""
    out = []
    for p in s.get("ports") or []:
        if isinstance(p, dict):
            out.append(f"{p.get('host_ip', '')}:{p.get('published')}")
        else:
            out.append(str(p).rsplit(":", 1)[0])
    return out


def healthy_dep(s, name):
    dep = (s.get("depends_on") or {})
    return isinstance(dep, dict) and (dep.get(name) or {}).get("condition") == "service_healthy"


def check(cfg):
    errs = []
    services = cfg.get("services") or {}
    pg = services.get("postgres")
    if not pg:
        return ["no service 'postgres'"]
    if not (pg.get("healthcheck") or {}).get("test"):
        errs.append("postgres: no healthcheck")
    pg_env = pg.get("environment") or {}
    cols = collectors(services)
    if len(cols) != COLLECTORS:
        errs.append(f"{len(cols)} services mount errqd's config, want {COLLECTORS}")
    urls = {}
    seen_ports = {}
    for name, s in sorted(cols.items()):
        env = s.get("environment") or {}
        url = env.get("ERRQ_DATABASE")
        urls[name] = url
        if not url:
            errs.append(f"{name}: no ERRQ_DATABASE")
            continue
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("postgres", "postgresql"):
            errs.append(f"{name}: ERRQ_DATABASE is not a postgres:// URL")
        elif u.hostname != "postgres":
            errs.append(f"{name}: ERRQ_DATABASE's host '{u.hostname}' is not the postgres service")
        else:
            want = (pg_env.get("POSTGRES_USER", "postgres"), pg_env.get("POSTGRES_PASSWORD"),
                    pg_env.get("POSTGRES_DB", pg_env.get("POSTGRES_USER", "postgres")))
            got = (urllib.parse.unquote(u.username or ""), urllib.parse.unquote(u.password or ""),
                   u.path.lstrip("/"))
            for what, w, g in zip(("user", "password", "database"), want, got):
                if w != g:
                    errs.append(f"{name}: ERRQ_DATABASE's {what} is not the postgres service's")
        if not healthy_dep(s, "postgres"):
            errs.append(f"{name}: does not depend on postgres being healthy")
        if not (s.get("healthcheck") or {}).get("test"):
            errs.append(f"{name}: no healthcheck")
        ports = host_ports(s)
        if len(ports) < 2:
            errs.append(f"{name}: publishes {len(ports)} ports, want gRPC and HTTP")
        for p in ports:
            if p in seen_ports:
                errs.append(f"{name}: host port {p} is {seen_ports[p]}'s too")
            seen_ports[p] = name
    if len(set(urls.values())) > 1:
        errs.append("the collectors are on different databases: "
                    + ", ".join(f"{n}={urllib.parse.urlsplit(u or '').hostname}" for n, u in sorted(urls.items())))
    return errs


def selftest(good):
    def env(c, name):
        return c["services"][name].setdefault("environment", {})
    cases = [
        ("another database for one collector", "different databases",
         lambda c: env(c, "errqd-3").update(ERRQ_DATABASE=env(c, "errqd-3")["ERRQ_DATABASE"].replace("/errq?", "/other?"))),
        ("a wrong password", "password",
         lambda c: env(c, "errqd-2").update(ERRQ_DATABASE=env(c, "errqd-2")["ERRQ_DATABASE"].replace(":EXAMPLE", ":x"))),
        ("no depends_on", "healthy", lambda c: c["services"]["errqd-2"].pop("depends_on")),
        ("two collectors on one port", "host port",
         lambda c: c["services"]["errqd-3"].update(ports=c["services"]["errqd-1"]["ports"])),
        ("a collector less", "want 3", lambda c: c["services"].pop("errqd-3")),
        ("no healthcheck on postgres", "postgres: no healthcheck", lambda c: c["services"]["postgres"].pop("healthcheck")),
    ]
    base = check(good)
    if base:
        print("selftest: the good file fails:\n" + "\n".join(base), file=sys.stderr)
        return 1
    bad = 0
    for name, want, break_it in cases:
        c = copy.deepcopy(good)
        break_it(c)
        errs = check(c)
        hit = [e for e in errs if want in e]
        if hit:
            print(f"selftest: '{name}' rejected: {hit[0]}")
        else:
            print(f"selftest: '{name}' not rejected (want '{want}'): {'; '.join(errs) or 'no error'}", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


def main(argv):
    if len(argv) == 2 and argv[0] == "--selftest":
        with open(argv[1], encoding="utf-8") as f:
            return selftest(yaml.safe_load(f))
    if len(argv) == 1 and not argv[0].startswith("--"):
        with open(argv[0], encoding="utf-8") as f:
            errs = check(yaml.safe_load(f))
        for e in errs:
            print(e, file=sys.stderr)
        return 1 if errs else 0
    print("usage: compose_scale_out.py FILE | --selftest FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
