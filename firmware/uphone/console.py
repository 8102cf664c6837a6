# Serial console: the line protocol between a host (or a person) and the phone, the same on UART, USB and a pty.
# Host -> phone: `ev [sid] Event [k=v ...]`, `st`, `mem [gc|hold|release|map]`, `cov`, `net [reconnect [ip]]`,
# `echo text`, `selftest on|off`, `help`; self-test only: `new`, `cond`, `fail`.
# Phone -> host: `tr sid From Event To Actions` per transition, `st ...` lines, then `ok [...]` or `err <reason>`.
from uphone import table as T
from uphone.engine import (OK, UNHANDLED, GUARD, FAILED, ACT_ERRORS, ROLE_BOTH, ROLE_UAC, ROLE_UAS,
                           state_text, event_id)
from uphone.compat import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

HELP = ("commands: ev [sid] <Event> [key=value ...] | st | mem [gc|hold|release|map] | cov | "
        "net [reconnect [ip]] | echo <text> | selftest on|off | help ; "
        "self-test: new <kind> [UAC|UAS|Both] [State] [+Cond ...] | cond <sid> +Cond|-Cond ... | "
        "fail <Action> [unsupported]")
_ROLES = {"Both": ROLE_BOTH, "UAC": ROLE_UAC, "UAS": ROLE_UAS}


def cond_text(bits):
    names = [T.CONDS[i] for i in range(len(T.CONDS)) if bits >> i & 1]
    return ",".join(names) if names else "-"


def split_args(line):
    """Whitespace split with "double quoted" values (k="a b"). Raises ValueError on an open quote."""
    if '"' not in line:
        return line.split()         # the usual line: one call, not a string per character
    out, cur, q, has = [], "", False, False
    for ch in line:
        if ch == '"':
            q = not q
            has = True
        elif ch in " \t" and not q:
            if has:
                out.append(cur)
            cur, has = "", False
        else:
            cur += ch
            has = True
    if q:
        raise ValueError("unterminated quote")
    if has:
        out.append(cur)
    return out


def tr_line(engine, s, frm, ev, row):
    return "tr %s %s %s %s %s" % (s.sid, T.STATES[frm], T.EVENTS[ev], state_text(s), engine.row_actions_text(row))


class Console:
    """`phone` is the live phone (uphone.phone.Phone) or None; `write(str)` sends one line (no newline)."""

    def __init__(self, phone, write):
        self.phone = phone
        self.write = write
        self.selftest = None  # type: Any  # uphone.selftest.SelfTest when on
        self.loop = None        # the runtime loop, when one runs this console (crash count, pass times)
        self._held = None       # (heap in use, bytes allocated) when `mem hold` stopped the GC
        # the network link `net` shows and drops (uphone.wifi.Station on a board, hal.desktop.Link on the desktop):
        # .describe() -> text, .reconnect(ip or None) -> None, or why it cannot
        self.net = None
        if phone is not None:
            phone.add_listener(self._on_phone_line)

    def _on_phone_line(self, line):
        if self.selftest is None:
            self.write(line)

    def handle_line(self, line):
        """One command line in; always answers with exactly one final `ok ...` or `err ...` line."""
        try:
            words = split_args(line.strip())
        except ValueError as e:
            self.write("err " + str(e))
            return
        if not words:
            return
        cmd = words[0]
        try:
            if cmd == "ev":
                try:
                    self._ev(words[1:])
                except MemoryError:
                    # the user's key press is not lost to a fragmented heap: a transition commits only when all of
                    # its actions ran, so it is tried once more after the loop shed what it could and collected
                    if self.loop is None:
                        raise
                    self.loop.relieve()
                    self._ev(words[1:])
            elif cmd == "st":
                self._st()
            elif cmd == "selftest":
                self._selftest(words[1:])
            elif cmd == "cov":
                self.write("ok cov " + self.coverage())
            elif cmd == "echo":
                self.write("ok " + " ".join(words[1:]))     # a host marks its place in the line stream
            elif cmd == "mem":
                self._mem(words[1:])
            elif cmd == "net":
                self._net(words[1:])
            elif cmd == "help":
                self.write("ok " + HELP)
            elif cmd in ("new", "cond", "fail"):
                if self.selftest is None:
                    self.write("err %s works only in self-test mode (selftest on)" % cmd)
                else:
                    getattr(self, "_" + cmd)(words[1:])
            else:
                self.write("err unknown command %r (try help)" % cmd)
        except Exception as e:  # a console must never take the phone down
            self.write("err %s: %s" % (cmd, e))

    # -- commands
    def _selftest(self, w):
        if w == ["on"]:
            from uphone.selftest import Recorder
            self.selftest = Recorder()
            self.selftest.engine.observer = self._st_observer
            self.write("ok selftest on (recording effects; no real calls)")
        elif w == ["off"]:
            self.selftest = None
            self.write("ok selftest off")
        else:
            self.write("err usage: selftest on|off")

    def _st_observer(self, s, frm, ev, row):
        self.write(tr_line(self.selftest.engine, s, frm, ev, row))

    def _sessions(self):
        if self.selftest is not None:
            return self.selftest.sessions
        return self.phone.sessions() if self.phone is not None else []

    def _find(self, sid):
        for s in self._sessions():
            if s.sid == sid:
                return s
        return None

    def _ev(self, w):
        if not w:
            self.write("err usage: ev [sid] <Event> [key=value ...]")
            return
        sid = None
        if event_id(w[0]) < 0 and len(w) > 1 and event_id(w[1]) >= 0:
            sid, w = w[0], w[1:]
        name = w[0]
        ev = event_id(name)
        if ev < 0:
            self.write("err unknown event %r" % name)
            return
        args = {}
        for kv in w[1:]:
            k, eq, v = kv.partition("=")
            if not eq or not k:
                self.write("err bad argument %r (key=value)" % kv)
                return
            args[k] = v
        if name in T.CORE_EVENTS:
            self.write("err %s is answered by the SIP/media core, not the table" % name)
            return
        if self.selftest is not None:
            s = self._find(sid) if sid else (self.selftest.sessions[-1] if self.selftest.sessions else None)
            if s is None:
                self.write("err no session %s" % (sid or "(use new)"))
                return
            res = self.selftest.engine.dispatch(s, ev, args)
            self._answer(self.selftest.engine, s, ev, res)
            return
        if self.phone is None:
            self.write("err no phone running (selftest on for the table self-test)")
            return
        res, s, why = self.phone.user_event(sid, ev, args)
        if s is None:
            self.write("err " + why)
        else:
            self._answer(self.phone.engine, s, ev, res)

    def _answer(self, engine, s, ev, res):
        if res == OK:
            self.write("ok %s %s" % (s.sid, state_text(s)))
        elif res == UNHANDLED:
            self.write("err unhandled %s %s in %s" % (s.sid, T.EVENTS[ev], state_text(s)))
        elif res == GUARD:
            self.write("err guard %s %s in %s: needs %s" % (s.sid, T.EVENTS[ev], state_text(s),
                                                          self._guard_text(engine.last_row, s)))
        elif res == FAILED:
            self.write("err failed %s %s in %s: %s %s" % (
                s.sid, T.EVENTS[ev], state_text(s), T.ACTIONS[engine.last_action], ACT_ERRORS[engine.last_error]))
        else:
            self.write("err bad event")

    def _guard_text(self, row, s):
        x = T.ROWS[row * 5 + 3]
        req, forbid = T.CFX[x], T.CFX[x + 1]
        parts = [T.CONDS[i] for i in range(len(T.CONDS)) if (req >> i & 1) and not (s.cond >> i & 1)]
        parts += ["!" + T.CONDS[i] for i in range(len(T.CONDS)) if (forbid >> i & 1) and (s.cond >> i & 1)]
        return ",".join(parts)

    def _st(self):
        n = 0
        for s in self._sessions():
            self.write("st %s %s %s %s %s" % (s.sid, T.KINDS[s.kind], T.ROLES[s.role], state_text(s),
                                              cond_text(s.cond)))
            n += 1
        if self.selftest is None and self.phone is not None:
            for line in self.phone.status_lines():
                self.write(line)
        if self.loop is not None:
            lp = self.loop
            self.write("loop crashes=%d dropped=%d oom=%d rx=%d" % (lp.crashes, lp.dropped, lp.oom, lp.rx))
        self.write("ok %d sessions" % n)

    def coverage(self):
        """The table rows this phone has taken, as hex (a bit per row id, row 0 the lowest bit of the first byte)."""
        if self.phone is None:
            return ""
        return "".join(["%02x" % b for b in self.phone.engine.taken])

    def _net(self, w):
        """`net`: the link and our address. `net reconnect [ip]`: drop the link and join again now, as a lost Wi-Fi
        link comes back (a host moving the phone to another access point, or checking that calls, registration
        and message waiting follow a new address); the phone's own lines (`net address a -> b`, `reg ...`, the
        re-INVITEs' transitions) say what followed. ip: the address the link comes back with, only where the
        link takes one (the desktop's; a board's comes from the access point)."""
        link = self.net
        if link is None:
            self.write("err net: no network link here")
        elif not w:
            self.write("ok net " + link.describe())
        elif w[0] == "reconnect" and len(w) <= 2:
            why = link.reconnect(w[1] if len(w) == 2 else None)
            self.write("err net: " + why if why else "ok net reconnecting")
        else:
            self.write("err usage: net [reconnect [ip]]")

    def _mem(self, w):
        """`mem [gc]`: heap in use and free, bytes allocated since start (total: MicroPython's mem_total, which
        also counts call frames freed at once), the longest loop pass since the last `mem`; -1 where a runtime
        lacks a figure. `mem hold` collects and stops the GC; `mem release` restarts it and reports garbage=: what
        the window allocated and did not free (the heap the GC would have to reclaim) and churn=: all it allocated."""
        import gc
        try:
            import micropython
            mem_total = micropython.mem_total   # type: ignore[attr-defined]  # unix port (MICROPY_MEM_STATS)
        except (ImportError, AttributeError):
            def mem_total():
                return -1
        alloc = getattr(gc, "mem_alloc", lambda: -1)
        lp = self.loop
        if w == ["hold"]:
            gc.collect()
            gc.disable()
            self._held = (alloc(), mem_total())
        elif w == ["release"]:
            held = self._held
            a, t = alloc(), mem_total()
            gc.enable()
            self._held = None
            if held is None:
                self.write("err mem release without mem hold")
                return
            self.write("ok mem garbage=%d churn=%d" % (a - held[0], t - held[1] if held[1] >= 0 else -1))
            return
        elif w == ["gc"]:
            gc.collect()
        elif w == ["map"]:
            try:
                import micropython
                gc.collect()
                micropython.mem_info(1)     # MicroPython prints the heap's block map: where it is in pieces
            except (ImportError, AttributeError):
                self.write("err mem map: MicroPython only")
                return
        elif w:
            self.write("err usage: mem [gc|hold|release|map]")
            return
        self.write("ok mem alloc=%d free=%d total=%d max_pass_ms=%d crashes=%d" % (
            alloc(), getattr(gc, "mem_free", lambda: -1)(), mem_total(), lp.max_pass_ms if lp else -1,
            lp.crashes if lp else 0))
        if lp is not None:
            lp.max_pass_ms = 0

    def _new(self, w):
        if not w or w[0] not in T.KINDS:
            self.write("err usage: new <%s> [UAC|UAS|Both] [State] [+Cond ...]" % "|".join(T.KINDS))
            return
        kind = T.KINDS.index(w[0])
        role, state, cond = ROLE_BOTH, None, 0
        for x in w[1:]:
            if x in _ROLES:
                role = _ROLES[x]
            elif x in T.STATES:
                state = T.STATES.index(x)
            elif x[:1] == "+" and x[1:] in T.CONDS:
                cond |= 1 << T.CONDS.index(x[1:])
            else:
                self.write("err new: unknown %r" % x)
                return
        s = self.selftest.new_session(kind, role, state, cond)
        self.write("ok %s %s" % (s.sid, state_text(s)))

    def _cond(self, w):
        s = self._find(w[0]) if w else None
        if s is None:
            self.write("err usage: cond <sid> +Cond|-Cond ...")
            return
        bits = s.cond
        for x in w[1:]:
            if x[:1] not in "+-" or x[1:] not in T.CONDS:
                self.write("err cond: expected +Cond or -Cond, got %r" % x)
                return
            b = 1 << T.CONDS.index(x[1:])
            bits = bits | b if x[0] == "+" else bits & ~b
        s.cond = bits
        self.write("ok %s %s" % (s.sid, cond_text(bits)))

    def _fail(self, w):
        if not w or w[0] not in T.ACTIONS or (len(w) > 1 and w[1:] != ["unsupported"]):
            self.write("err usage: fail <Action> [unsupported]")
            return
        self.selftest.fail_next(w[0], len(w) > 1)
        self.write("ok next %s fails" % w[0])
