# The table compiler and verifier: generated file fresh and deterministic, bad sources refused, no verify errors.
import json
import os
import subprocess
import sys

import pytest

from host_tools import tablec, table_cmd

ROOT = tablec.ROOT
SPEC_TEXT = open(tablec.SPEC).read()


def phonectl(*args, **kw):
    return subprocess.run([sys.executable, "-m", "host_tools"] + list(args), cwd=ROOT, capture_output=True,
                          text=True, timeout=120, **kw)


def test_generated_table_is_fresh_and_deterministic():
    m = tablec.load()
    a, b = tablec.emit(m), tablec.emit(tablec.parse(SPEC_TEXT))
    assert a == b
    assert open(tablec.OUT).read() == a, "firmware/uphone/table.py is stale: run `phonectl table compile`"
    r = phonectl("table", "compile", "--check")
    assert r.returncode == 0, r.stderr


def test_every_seed_state_is_in_the_table():
    seed = ("Idle Initiating Ringing EarlyMedia Active OnHold Resuming Muted ConferenceHost InConference "
            "ConferenceOnHold Transferring ConsultationCall Bridged Terminating Terminated Cancelled Failed "
            "Registering Registered Unregistering Subscribing Subscribed Publishing BridgeInitiating "
            "BridgeActive").split()
    m = tablec.load()
    assert m.states[:26] == seed
    used = {r.state for r in m.rows} | {r.next for r in m.rows}
    assert set(seed) <= used


def _with_row(row, kind="call"):
    return SPEC_TEXT.replace("kind registration", row + "\n\nkind registration", 1)


@pytest.mark.parametrize("row, msg", [
    ("Idle | MakeCal | UAC | - | Initiating | SendINVITE | -", "unknown event 'MakeCal'"),
    ("Idel | MakeCall | UAC | - | Initiating | SendINVITE | -", "unknown state 'Idel'"),
    ("Idle | MakeCall | UAX | - | Initiating | SendINVITE | -", "unknown role"),
    ("Idle | Reset | Both | HasMedia | Idle | - | -", "unknown condition 'HasMedia'"),
    ("Idle | Reset | Both | - | Failed | - | -", "Failed carries a reason"),
    ("Idle | Reset | Both | - | Failed(Oops) | - | -", "unknown failure reason"),
    ("Idle | Reset | Both | - | Idle | - | +Nope", "conditions are +Cond or -Cond"),
    ("Idle | MakeCall | UAC | - | Ringing | SendINVITE | -", "duplicate cell (call, Idle, MakeCall, UAC"),
    ("Idle | MakeCall | Both | - | Ringing | SendINVITE | -", "overlaps the Both row"),
    ("Idle | Reset | Both | - | Idle | -", "7 columns"),
])
def test_compiler_rejects_bad_rows(row, msg):
    with pytest.raises(tablec.SpecError) as e:
        tablec.parse(_with_row(row))
    assert msg in str(e.value)


def test_compiler_rejects_actions_without_firmware_implementation():
    m = tablec.parse(_with_row("Idle | Reset | Both | - | Idle | LaunchRocket | -"))
    errs = tablec.check_actions(m)
    assert any("LaunchRocket has no implementation" in e for e in errs)
    assert tablec.check_actions(tablec.load()) == []


def test_verify_has_no_errors_and_nothing_unsupported():
    errors, warnings, info = table_cmd.verify(tablec.load())
    assert errors == []
    # every action of the table is implemented (issue 12): nothing is declared unsupported any more
    assert not any(w.startswith("actions still unsupported") for w in warnings), warnings
    r = phonectl("table", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 errors" in r.stdout


def test_verify_finds_dead_ends_unreachable_states_and_missing_part2_rows():
    text = SPEC_TEXT
    # drop the only way out of Terminating and the Part 2 row OnHold x DialogBYE
    text = "\n".join(l for l in text.splitlines()
                     if not l.startswith("Terminating | InternalCleanupComplete")
                     and not l.startswith("Terminating | DialogTimeout")
                     and not l.startswith("OnHold     | DialogBYE")
                     and not l.startswith("Active     | InitiateBridge")
                     and not l.startswith("OnHold     | InitiateBridge")
                     and not l.startswith("Transferring | InitiateBridge"))
    m = tablec.parse(text)
    errors, _, _ = table_cmd.verify(m)
    joined = "\n".join(errors)
    assert "kind call: state Terminating has no path to a final state" in joined
    assert "seed Part 2 says OnHold accepts DialogBYE but no row handles it" in joined
    assert "kind call: state Bridged is unreachable from Idle" in joined


def test_dump_is_one_json_object_per_transition():
    r = phonectl("table", "dump")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == len(tablec.load().rows)
    first = json.loads(lines[0])
    assert set(first) >= {"state", "event", "role", "guards", "next", "actions", "set", "clear"}
    assert first["state"] == "Idle" and first["event"] == "MakeCall" and first["next"] == "Initiating"
    assert "SendINVITE" in first["actions"] and "HasMediaSession" in first["set"]
    failed = [json.loads(l) for l in lines if '"Failed(' in l]
    assert failed and all("(" in f["next"] for f in failed)


@pytest.mark.parametrize("ext", [".dot", ".svg"])
def test_draw(tmp_path, ext):
    out = tmp_path / ("t" + ext)
    r = phonectl("table", "draw", "-o", str(out))
    if ext == ".svg" and r.returncode == 2 and "Graphviz" in r.stderr:
        from tests.conftest import need_binary
        need_binary("dot")
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    for kind in ("call", "registration", "subscription", "publication", "bridge"):
        assert "cluster_%s" % kind in text or ">%s<" % kind in text



def test_every_id_the_code_names_exists():
    # the generated module keeps no id globals: T.S_Idle, T.E_MakeCall ... are resolved from the names on first use,
    # so mypy cannot see a typo or a renamed state any more; this scan (also run by `table compile` and `verify`) does
    from uphone import table as T
    m = tablec.load()
    refs = tablec.referenced_ids()
    assert "S_Idle" in refs and "E_MakeCall" in refs and "C_HasMediaSession" in refs and "K_call" in refs
    assert tablec.check_references(m) == []
    for name in sorted(refs):
        assert getattr(T, name) == tablec.id_value(m, name), name
    assert T.C_TranscodingRequired == 1 << m.conds.index("TranscodingRequired")
    assert T.R_NetworkError == 1 + m.reasons.index("NetworkError")
    for bad in ("S_Idel", "E_", "R_-", "X_Idle", "K_Call", "S_Idle Initiating"):
        assert not hasattr(T, bad), bad
    errs = tablec.check_references(m, {"S_Idel": "firmware/uphone/x.py:3", "E_MakeCall": "y.py:1"})
    assert errs == ["firmware/uphone/x.py:3: S_Idel is not an id of the table (no such state)"]


def test_names_work_like_tuples_of_str():
    from uphone import table as T
    m = tablec.load()
    for name, names in tablec.name_families(m):
        fam = getattr(T, name)
        assert len(fam) == len(names) and list(fam) == list(names) and tuple(fam) == tuple(names), name
        assert [fam[i] for i in range(len(names))] == list(names)
        assert fam[-1] == names[-1]
        for i, n in enumerate(names):
            assert n in fam and fam.index(n) == i and fam.find(n) == i
    assert "Idle Initiating" not in T.STATES and "" not in T.STATES and "Idl" not in T.STATES
    assert "MakeCall" not in T.STATES and 3 not in T.STATES and T.STATES.find("MakeCall") == -1
    assert T.CORE_EVENTS.find("Idle") == -1 and "|".join(T.KINDS) == "|".join(k[0] for k in m.kinds)
    with pytest.raises(IndexError):
        T.STATES[len(m.states)]
    with pytest.raises(ValueError):
        T.EVENTS.index("Nope")


def test_table_constants_decode_to_the_rows():
    # the packed form (row-displaced cells, shared call runs, flat condition masks) says what the spec says
    from uphone import table as T
    m = tablec.load()
    enc = tablec.encode(m)
    ne = len(m.events)
    for st in range(len(m.states)):
        for ev in range(ne):
            i = T.CELL_BASE[st] + ev
            got = T.CELL_ROW[i] if T.CELL_STATE[i] == st else 0xFF
            assert got == enc["dense"][st * ne + ev], (st, ev)
    for pos, i in enumerate(enc["order"]):
        r = m.rows[i]
        o = pos * 5
        a, n = T.ROWS[o + 4], T.ROWS[o + 2] >> 4
        calls = [(T.ACTIONS[T.CALL_ACTION[k]], T.ARGS[T.CALL_ARG[k]] or ()) for k in range(a, a + n)]
        assert calls == [(name, tuple(args)) for name, args in r.actions], r.line
        x = T.ROWS[o + 3]
        masks = [sum(1 << m.conds.index(c) for c in cs) for cs in (r.req, r.forbid, r.set, r.clear)]
        assert list(T.CFX[x:x + 4]) == masks, r.line
        assert T.STATES[T.ROWS[o + 1]] == r.next and T.ROWS[o + 2] & 15 == (
            0 if r.reason is None else T.REASONS.index(r.reason))
    for k, (kind, start, finals, _) in enumerate(m.kinds):
        assert T.KIND_START[k] == m.states.index(start)
        for st in range(len(m.states)):
            bit = T.KIND_FINAL[k * T.KIND_FINAL_W + (st >> 3)] >> (st & 7) & 1
            assert bit == (m.states[st] in finals), (kind, st)


def test_running_phone_coverage_maps_the_engines_row_bits_to_the_spec(tmp_path):
    # a phone's engine sets a bit per committed row (table.py's order); the host maps the bits back to spec rows
    import subprocess
    import sys
    from uphone import table as T
    from uphone.engine import Engine, Session, ROLE_UAC
    from uphone import actions
    from host_tools import table_cmd
    e = Engine(actions.bind_all(lambda n: (lambda fx, s, a, ev: 0)))
    s = Session("c1", T.K_call, ROLE_UAC)
    e.dispatch(s, T.E_MakeCall)
    e.dispatch(s, T.E_Dialog180Ringing)
    m = tablec.load()
    f = tmp_path / "cov.txt"
    f.write_text("cpython %s\nmicropython %s\n" % ("".join("%02x" % b for b in e.taken), "00" * len(e.taken)))
    taken, per = table_cmd.coverage(m, str(f))
    names = sorted("%s x %s" % (m.rows[i].state, m.rows[i].event) for i in taken)
    assert names == ["Idle x MakeCall", "Initiating x Dialog180Ringing"]
    assert per["micropython"] == set()
    r = subprocess.run([sys.executable, "-m", "host_tools", "table", "coverage", "--file", str(f)], cwd=tablec.ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("running-phone coverage: 2 of %d transitions" % len(m.rows))
    assert len([l for l in lines if l.startswith("  not taken:")]) == len(m.rows) - 2


def test_every_coverage_reason_names_a_row_of_the_table():
    # host_tools/coverage_reasons.txt says why a row is not taken by a running phone: a reason whose row was renamed
    # or removed would never be printed, and the row it meant would go without one
    keys = set(table_cmd.row_key(r) for r in tablec.load().rows)
    reasons = table_cmd.load_reasons()
    assert reasons and all(why for why in reasons.values()), reasons
    assert sorted(k for k in reasons if k not in keys) == []
