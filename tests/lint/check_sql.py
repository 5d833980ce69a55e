#!/usr/bin/env python3
"""check_sql.py: no SQL is built from input (issue 14, "Security").  Run by ctest (lint_sql).

The rule, as enforced here over the project's C sources (tests/ excluded: they read databases
with their own literal SQL):

 1. SQL is compiled only in storage/: no sqlite3_prepare*, sqlite3_exec anywhere else.
 2. No printf of SQL text from strings: sqlite3_mprintf, sqlite3_vmprintf, sqlite3_snprintf,
    sqlite3_vsnprintf and sqlite3_str_*appendf are not used at all, and a format string that
    contains SQL (an upper-case keyword: SELECT, PRAGMA, WHERE...) passed to errq_snprintf,
    errq_buf_printf or snprintf has integer conversions only (%d, %lld, %u...; never %s, %c,
    %p): an integer cannot carry SQL syntax, a string can.
 3. The SQL argument of sqlite3_prepare*, sqlite3_exec and of storage's own wrappers around them
    (a function taking `const char *sql` that passes it on: store__exec, prepare, query1...)
    is one of:
      - string literals, optionally with upper-case macros that are themselves literals
        (`"SELECT " EVENT_COLS " FROM events"`), or `cond ? literal : literal`;
      - an element of a named constant table (`stmt_sql[i]`, `migrations[v]`, `pragma_sql[i].sql`);
      - a local buffer composed by rules 2 and 4 (`char sql[512]` filled with errq_buf_addstr);
      - a local `const char *` assigned only literals or constant-table elements.
 4. errq_buf_addstr / errq_buf_add in storage/ take literals or constant-table elements only.
 Values always reach SQLite through sqlite3_bind_*.

`check_sql.py SRC_DIR` checks the tree; `check_sql.py --selftest` shows the checker flags
each kind of violation (and passes the good forms), so the test cannot pass by checking nothing.
"""
import os
import re
import sys

SINKS = {"sqlite3_prepare": 1, "sqlite3_prepare_v2": 1, "sqlite3_prepare_v3": 1, "sqlite3_prepare16": 1,
         "sqlite3_prepare16_v2": 1, "sqlite3_prepare16_v3": 1, "sqlite3_exec": 1}
BANNED = ["sqlite3_mprintf", "sqlite3_vmprintf", "sqlite3_snprintf", "sqlite3_vsnprintf", "sqlite3_str_appendf",
          "sqlite3_str_vappendf"]
FORMATTERS = {"errq_snprintf": 2, "errq_buf_printf": 1, "snprintf": 2, "vsnprintf": 2}
APPENDERS = {"errq_buf_addstr": 1, "errq_buf_add": 1}
SQL_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|PRAGMA|CREATE|DROP|ALTER|BEGIN|COMMIT|ROLLBACK|WHERE|"
                      r"FROM|VACUUM|ATTACH|REPLACE|VALUES|AND|OR|ORDER|LIMIT|JOIN|SET|INTO|GROUP)\b")
CONV = re.compile(r"%[-+ #0]*(\*|\d+)?(\.(\*|\d+))?(hh|h|ll|l|z|j|t|L)?([a-zA-Z%])")
SOURCE_DIRS = ["common", "server", "storage", "client", "cli", "bench", "clients", "examples"]


def strip_comments(src):
    """Blanks comments (keeping strings and line numbers)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def call_args(src, open_paren):
    """The top-level arguments of the call whose '(' is at open_paren, and the end index."""
    depth, i, start, args = 0, open_paren, open_paren + 1, []
    while i < len(src):
        c = src[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < len(src) and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(src[start:i].strip())
                return args, i
        elif c == "," and depth == 1:
            args.append(src[start:i].strip())
            start = i + 1
        i += 1
    return args, i


def calls(src, name):
    for m in re.finditer(r"\b%s\s*\(" % re.escape(name), src):
        # a definition or declaration is not a call
        before = src[max(0, m.start() - 40):m.start()]
        if re.search(r"(\bint|\bvoid|\bsqlite3_stmt\s*\*|\*)\s*$", before) and not re.search(r"[=(,]\s*$", before):
            continue
        args, end = call_args(src, m.end() - 1)
        yield args, src.count("\n", 0, m.start()) + 1


def literal_text(expr):
    """The text of expr when it is string literals and upper-case macros only, else None."""
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        expr = expr[1:-1].strip()
    parts = re.findall(r'"(?:[^"\\]|\\.)*"|[A-Z][A-Z0-9_]*|\S', expr)
    if not parts or not any(p.startswith('"') for p in parts):
        return None
    text = []
    for p in parts:
        if p.startswith('"'):
            text.append(p[1:-1])
        elif re.fullmatch(r"[A-Z][A-Z0-9_]*", p):
            text.append(" ")
        else:
            return None
    return "".join(text)


class FileCheck:
    def __init__(self, path, src, wrappers):
        self.path, self.src, self.wrappers, self.errors = path, strip_comments(src), wrappers, []
        # named constant tables: `const char *const NAME[` / `const char *NAME[] =` / const struct arrays
        self.tables = set(re.findall(r"\bconst\s+char\s*\*\s*(?:const\s+)?(\w+)\s*\[[^\]]*\]\s*=", self.src))
        self.tables |= set(re.findall(r"\bstatic\s+const\s+struct\s*(?:\w+\s*)?\{[^}]*\}\s*(\w+)\s*\[", self.src))
        self.buffers = set(re.findall(r"\bchar\s+(\w+)\s*\[[^\]]+\]\s*;", self.src))
        self.pointers = set(re.findall(r"\bconst\s+char\s*\*\s*(\w+)\s*=", self.src)) - self.tables

    def err(self, line, msg):
        self.errors.append("%s:%d: %s" % (self.path, line, msg))

    def fixed(self, expr):
        """A literal, literal ? literal : literal, or a constant-table element."""
        expr = expr.strip()
        if literal_text(expr) is not None:
            return True
        m = re.fullmatch(r"[^?]+\?(.+):(.+)", expr, re.S)
        if m and self.fixed(m.group(1)) and self.fixed(m.group(2)):
            return True
        m = re.fullmatch(r"(\w+)\s*\[[^\]]*\](\s*\.\s*\w+)?", expr)
        return bool(m and m.group(1) in self.tables)

    def check_sink_arg(self, expr, line, what, params):
        if self.fixed(expr) or expr in params:
            return
        if expr in self.buffers:
            return  # composed in place: rules 2 and 4 cover every write into it
        if expr in self.pointers:
            for m in re.finditer(r"\b%s\s*=\s*([^;]+);" % re.escape(expr), self.src):
                if not self.fixed(m.group(1)) and m.group(1).strip() != "NULL":
                    self.err(self.src.count("\n", 0, m.start()) + 1,
                             "'%s' (passed to %s) is assigned '%s': SQL must be a literal or a constant "
                             "table entry" % (expr, what, m.group(1).strip()))
            return
        self.err(line, "%s is given '%s': SQL must be a literal, a constant table entry or a buffer composed "
                 "of literals (tests/lint/check_sql.py)" % (what, expr))

    def run(self, in_storage):
        for name in BANNED:
            for _, line in calls(self.src, name):
                self.err(line, "%s formats SQL text: bind values with sqlite3_bind_* instead" % name)
        for name, idx in list(SINKS.items()) + (list(self.wrappers.items()) if in_storage else []):
            for args, line in calls(self.src, name):
                if not in_storage and name in SINKS:
                    self.err(line, "%s outside storage/: SQL lives in storage/ only" % name)
                    continue
                if len(args) > idx:
                    self.check_sink_arg(args[idx], line, name, self.params_at(line))
        if not in_storage:
            return
        for name, idx in FORMATTERS.items():
            for args, line in calls(self.src, name):
                if len(args) <= idx:
                    continue
                text = literal_text(args[idx])
                if text is None or not SQL_WORD.search(text):
                    continue
                bad = [m.group(0) for m in CONV.finditer(text) if m.group(5) not in "diuxXo%" or m.group(1) == "*"]
                if bad:
                    self.err(line, "%s formats SQL with %s: only integers may be formatted into SQL, "
                             "bind the rest" % (name, ", ".join(bad)))
        for name, idx in APPENDERS.items():
            for args, line in calls(self.src, name):
                if len(args) > idx and not self.fixed(args[idx]):
                    # an appender on a non-SQL buffer is fine; only buffers that reach a sink matter
                    target = args[0].lstrip("&").strip()
                    if self.buffer_reaches_sink(target, line):
                        self.err(line, "%s appends '%s' to SQL: only literals and constant table entries "
                                 "may be appended" % (name, args[idx]))

    def params_at(self, line):
        """Parameters named in the signature of the function enclosing line that are `const char *`."""
        lines = self.src.split("\n")[:line]
        for i in range(len(lines) - 1, -1, -1):
            if re.match(r"^[A-Za-z].*\(", lines[i]) and not lines[i].startswith(("if", "while", "for")):
                sig = " ".join(lines[i:i + 3])
                return set(re.findall(r"const\s+char\s*\*\s*(\w+)\s*[,)]", sig))
        return set()

    def buffer_reaches_sink(self, target, line):
        # the errq_buf variable q wraps a char buffer (errq_buf_init_fixed(&q, sql, ...)) or is a
        # parameter (add_count_expr): treat every appender in storage/ as SQL unless the buffer is
        # plainly an error message
        return not re.search(r"err|msg|path|name", target)


def find_wrappers(files):
    """Functions with a `const char *sql` parameter passing it to a sink, by argument index."""
    wrappers = {}
    changed = True
    while changed:
        changed = False
        for path, src in files:
            for m in re.finditer(r"^[a-z].*?\b(\w+)\s*\(([^)]*)\)\s*\n\{", src, re.M):
                name, params = m.group(1), [p.strip() for p in m.group(2).split(",")]
                if name in wrappers or name in SINKS:
                    continue
                for i, p in enumerate(params):
                    pm = re.fullmatch(r"const\s+char\s*\*\s*(\w+)", p)
                    if not pm:
                        continue
                    body_end = src.find("\n}\n", m.end())
                    body = src[m.end():body_end]
                    for sink, sidx in list(SINKS.items()) + list(wrappers.items()):
                        for args, _ in calls(body, sink):
                            if len(args) > sidx and args[sidx] == pm.group(1):
                                wrappers[name] = i
                                changed = True
    return wrappers


def check_tree(root):
    errors, storage = [], []
    sources = []
    for d in SOURCE_DIRS:
        for dirpath, _, names in os.walk(os.path.join(root, d)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    p = os.path.join(dirpath, n)
                    with open(p, encoding="utf-8", errors="replace") as f:
                        sources.append((os.path.relpath(p, root), f.read()))
    storage = [(p, strip_comments(s)) for p, s in sources if p.startswith("storage" + os.sep)]
    wrappers = find_wrappers(storage)
    for p, s in sources:
        fc = FileCheck(p, s, wrappers)
        fc.run(p.startswith("storage" + os.sep))
        errors += fc.errors
    return errors, wrappers, len(sources)


SELFTEST_BAD = {
    "a string formatted into SQL": 'void f(struct errq_buf *q, const char *svc) {\n'
    '\terrq_buf_printf(q, "SELECT * FROM events WHERE service = \'%s\'", svc);\n}\n',
    "sqlite3_mprintf": 'void f(const char *svc) {\n\tchar *z = sqlite3_mprintf("SELECT %Q", svc);\n}\n',
    "a variable passed to prepare": 'int f(sqlite3 *db, const char *user)\n{\n\tchar *q = strdup(user);\n'
    '\treturn sqlite3_prepare_v2(db, q, -1, &st, NULL);\n}\n',
    "input appended to a composed statement": 'int f(sqlite3 *db, const char *col)\n{\n\tchar sql[64];\n'
    '\tstruct errq_buf q;\n\terrq_buf_init_fixed(&q, sql, sizeof(sql));\n\terrq_buf_addstr(&q, col);\n'
    '\treturn sqlite3_prepare_v2(db, sql, -1, &st, NULL);\n}\n',
    "a pointer assigned from input": 'int f(sqlite3 *db, struct req *r)\n{\n\tconst char *sql = NULL;\n'
    '\tsql = r->text;\n\treturn sqlite3_exec(db, sql, NULL, NULL, NULL);\n}\n',
}
SELFTEST_GOOD = ('static const char *const stmt_sql[] = {"SELECT 1", "SELECT 2"};\n'
                 'int f(sqlite3 *db, int i, int n, bool b)\n{\n\tchar sql[64];\n\tstruct errq_buf q;\n'
                 '\terrq_buf_init_fixed(&q, sql, sizeof(sql));\n\terrq_buf_addstr(&q, b ? "SELECT a" : "SELECT b");\n'
                 '\terrq_buf_printf(&q, " FROM t WHERE x = %d LIMIT ?1", n);\n'
                 '\tsqlite3_exec(db, "BEGIN", NULL, NULL, NULL);\n'
                 '\tsqlite3_prepare_v2(db, "SELECT " COLS " FROM t", -1, &st, NULL);\n'
                 '\tsqlite3_prepare_v2(db, stmt_sql[i], -1, &st, NULL);\n'
                 '\treturn sqlite3_prepare_v2(db, sql, -1, &st, NULL);\n}\n')


def selftest():
    failed = 0
    for what, src in SELFTEST_BAD.items():
        fc = FileCheck("bad.c", src, {})
        fc.run(True)
        if not fc.errors:
            print("selftest: not flagged: %s" % what)
            failed += 1
    fc = FileCheck("good.c", SELFTEST_GOOD, {})
    fc.run(True)
    for e in fc.errors:
        print("selftest: good form flagged: %s" % e)
        failed += 1
    outside = FileCheck("server/x.c", 'void f(sqlite3 *db) {\n\tsqlite3_exec(db, "BEGIN", 0, 0, 0);\n}\n', {})
    outside.run(False)
    if not outside.errors:
        print("selftest: SQL outside storage/ not flagged")
        failed += 1
    print("selftest: %d violation kinds flagged, good forms pass" % len(SELFTEST_BAD) if not failed else
          "selftest: %d failures" % failed)
    return 1 if failed else 0


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--selftest":
        return selftest()
    if len(sys.argv) != 2:
        print("usage: check_sql.py SRC_DIR | --selftest", file=sys.stderr)
        return 2
    errors, wrappers, n = check_tree(sys.argv[1])
    for e in errors:
        print(e)
    if errors:
        print("%d place(s) build SQL from something other than literals (rule: tests/lint/check_sql.py)"
              % len(errors))
        return 1
    print("check_sql: %d files, SQL sinks %s and wrappers %s: every statement is fixed text"
          % (n, ", ".join(sorted(SINKS)), ", ".join(sorted(wrappers))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
