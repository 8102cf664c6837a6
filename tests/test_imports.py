# No import circle in the firmware: the graph of every import between firmware modules (at module level and inside
# functions alike), read with ast, has no cycle. A circle only works by the order modules happen to load in (the
# phone and its call actions once imported each other from inside functions), and it hides which module depends on
# which: the session kinds in uphone/ua/ use the phone core passed to them and never import it.
import ast
import os

from tests.conftest import ROOT

FIRMWARE = os.path.join(ROOT, "firmware")


def modules(base):
    """{dotted module name: path} of every .py under base (a package's __init__.py is the package)."""
    out = {}
    for d, _dirs, files in os.walk(base):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                name = os.path.relpath(path, base)[:-3].replace(os.sep, ".")
                if name.endswith(".__init__"):
                    name = name[:-9]
                out[name] = path
    return out


def imports(name, path, known):
    """The modules of `known` that module `name` imports anywhere in its file, with the packages each one loads on
    the way (importing a.b.c runs a/__init__.py and a/b/__init__.py first)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    is_pkg = path.endswith("__init__.py")
    got = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                parts = name.split(".")
                base = parts if is_pkg else parts[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([mod] if mod else []))
            targets = [mod] + [mod + "." + a.name for a in node.names]     # `from pkg import submodule`
        else:
            continue
        for t in targets:
            parts = t.split(".")
            for i in range(1, len(parts) + 1):
                m = ".".join(parts[:i])
                if m in known and m != name:
                    got.add(m)
    return got


def graph(base):
    known = modules(base)
    return {m: imports(m, p, known) for m, p in known.items()}


def cycles(g):
    """Every cycle a depth-first walk meets, each as [a, b, ..., a]."""
    found, state = [], {}

    def walk(u, stack):
        state[u] = 1
        stack.append(u)
        for v in sorted(g[u]):
            if state.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
            elif v not in state:
                walk(v, stack)
        stack.pop()
        state[u] = 2

    for m in sorted(g):
        if m not in state:
            walk(m, [])
    return found


def test_no_import_cycle_in_the_firmware():
    g = graph(FIRMWARE)
    assert "uphone.ua.call" in g["uphone.phone"] and "uphone.sip.headers" in g["uphone.sip.parse"]   # it sees
    assert "uphone.ua.call" in g["uphone.actions"]          # imports inside functions count too
    found = cycles(g)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_session_kinds_never_import_the_phone():
    g = graph(FIRMWARE)
    kinds = [m for m in g if m.startswith("uphone.ua.")]
    assert "uphone.ua.call" in kinds and "uphone.ua.registration" in kinds
    for m in kinds:
        assert "uphone.phone" not in g[m], m


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from p import b\n")
    (pkg / "b.py").write_text("def f():\n    from p.a import x\n    return x\n")
    (pkg / "c.py").write_text("from . import b\n")
    assert cycles(graph(str(tmp_path))) == [["p.a", "p.b", "p.a"]]
