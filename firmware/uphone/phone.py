# The phone core: table sessions and their dispatch, timers, SIP in (parse, the RFC 3261 8.2 checks, requests and
# responses routed to the session and kind they belong to) and out (transactions, responses), and the console's
# status lines. The session kinds' actions live in uphone/ua/ (one module per kind), as functions of the phone:
# this class is the narrow interface they use (send_request, respond, send_sip, dispatch, post, start_timer, emit,
# new_session, sessions, cfg, rt, now ...). The kinds never import this module.
import gc

from uphone import table as T
from uphone import actions
from uphone.engine import Engine, Session, OK, UNHANDLED, FAILED, ROLE_UAC, ROLE_UAS, ROLE_BOTH, state_text
from uphone.compat import TYPE_CHECKING, const, one_line, ticks_diff, ticks_add
from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.sip import validate, transport
from uphone.sip.transaction import TransactionLayer
from uphone.ua import audio, call, gate, media, publication, registration, request, subscription, transfer
from uphone.ua import transport as tp

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

_FINAL_CALL = (T.S_Terminated, T.S_Cancelled, T.S_Failed)
_ENDING = (T.S_Terminating, T.S_Replaced)      # our BYE is out; its answer (or none) ends the call
# A session a stranger starts (an incoming call, a transfer's new call) is made only with this much heap free: a
# call holds ~7 KB once set up (bench: phone_mp) and its messages need a few KB more while they pass; below it the
# phone answers 503 with Retry-After instead of failing half-way through the call (MicroPython only: CPython's
# heap has no such bound)
_ROOM = const(16384)
_mem_free = getattr(gc, "mem_free", None)


class Ctx:
    """What a session keeps besides its state byte: SIP and media handles (None until an action makes them)."""
    # the conference or bridge pumping this call's media (ua/conference, ua/bridge): a class default, so a session
    # that is never in one keeps no slot for it (MicroPython: an instance attribute more can grow every Ctx's dict)
    mix = None  # type: Any

    def __init__(self, account):
        self.account = account
        self.dialog = None          # sip.dialog.Dialog once early/confirmed
        self.call_id = None
        self.local_tag = None
        self.remote_uri = None      # who we call / who called
        self.invite = None          # our INVITE (UAC) or theirs (UAS)
        self.invite_ctx = None      # client transaction of our INVITE
        self.invite_stx = None      # server transaction of their INVITE
        self.cancel_pending = False
        self.txns = []              # [client transaction, purpose]
        self.remote_sdp = None
        self.local_sdp = None
        self.sdp = None             # [o= session id, version] of the SDP we send
        self.neg = None             # sip.sdp.Negotiated
        self.local_dir = "sendrecv"
        self.media = None           # media.session.MediaSession
        self.rtp_sock = None
        self.rtp_port = 0
        self.line = -1              # the line whose buffers this call's media uses (see ua/media.py)
        self.rtp_buf = None         # where the RTP socket reads into: the start of the line's block
        self.rtp_peer = None        # (host, port) the RTP socket is connected to, once a valid packet came
        self.flowing = False
        self.tone = None
        self.next_frame = 0
        self.acked = False          # a 2xx of this dialog was ACKed: its retransmissions are ACKed again
        self.digits = ""            # DTMF received, for the console and tests
        self.recording = None
        self.refer_target = None
        self.extra = {}             # registration/subscription data



class Phone:
    def __init__(self, cfg, base_dir=""):
        self.cfg = cfg
        self.base_dir = base_dir
        self.engine = Engine(actions.bind(), self._observer, self)
        self.listeners = []
        self._sessions = []
        self._n = {}
        self.queue = []             # deferred (session, event, args): dispatched after the current one
        self.timers = []            # [deadline, session, state, event, args]
        self.rt = None  # type: Any  # the runtime (uphone.loop.Loop or the loopback net's), set by attach()
        sip = cfg["sip"]
        self.local_ip = sip.get("local_ip") or "127.0.0.1"
        self.local_port = sip.get("local_port", 5060)
        self.txl = None  # type: Any  # sip.transaction.TransactionLayer, made by attach()
        self.auth = None            # account index -> sip.auth.DigestClient (ua/request.py)
        self.mwi = None             # (waiting, "new/old") from message-summary NOTIFYs
        self.fail_answer = None     # (code, reason) for the request whose table action just failed
        self.timers_used = False    # a call agreed a session timer (RFC 4028): the loop asks ua/sessiontimer
        self.last_sdp_error = 0     # 488 when the last SDP offer or answer was refused (ua/media.py, ua/call.py)
        self.now = 0  # type: Any  # ticks_ms of the event being handled
        # conferences and bridges (ua/conference.py, ua/bridge.py), stepped every 20 ms by ua/audio.py, and the
        # multi-leg modules loaded so far (actions._lazy), whose progress follows each call transition
        self.mixes = []  # type: list
        self.multileg = []  # type: list
        tp.init(self)
        audio.init(self)
        media.init(self)
        gate.init(self)

    # -- wiring ------------------------------------------------------------------------------------------
    def add_listener(self, fn):
        self.listeners.append(fn)

    def emit(self, line):
        if "\n" in line or "\r" in line:      # a peer's text never forges a second console line
            line = line.replace("\r", "?").replace("\n", "?")
        for fn in self.listeners:
            fn(line)

    def sessions(self):
        return self._sessions

    def set_audio(self, src, sink):
        """The audio device (readinto/write of 20 ms frames at audio.rate), None for silence."""
        audio.set_audio(self, src, sink)

    def attach(self, rt):
        """Called by the runtime loop: open the SIP socket(s), start registrations and subscriptions."""
        self.rt = rt
        self.now = rt.now()
        tp.start(self)
        sip = self.cfg["sip"]
        self.txl = TransactionLayer(self, self.send_sip, t1=sip.get("t1_ms", 500), t2=sip.get("t2_ms", 4000),
                                    t4=sip.get("t4_ms", 5000))
        registration.start_accounts(self)

    def is_sip_socket(self, s):
        return tp.is_sip_socket(self, s)

    def shutdown(self, loop=None, wait_ms=2000):
        """Unregister (RFC 3261 10.2.2), take presence down (RFC 3903 4.5) and hang up before the process ends;
        keepalives stop at once, TCP connections close once the loop has carried the last requests."""
        tp.stop(self)
        for s in list(self._sessions):
            if s.kind == T.K_call and s.state not in _FINAL_CALL and s.state != T.S_Idle:
                self.dispatch(s, T.E_HangupCall)
            elif s.kind == T.K_registration and s.state == T.S_Registered:
                self.dispatch(s, T.E_Unregister)        # its SendUnregister takes the account's presence down too
            elif s.kind == T.K_publication:
                publication.stop(self, s.ctx.account, True)     # an account that does not register
        if loop is not None:
            start = self.rt.now()
            loop.run(until=lambda: (ticks_diff(self.rt.now(), start) > wait_ms) or not any(
                s.state in (T.S_Unregistering, T.S_Unpublishing) for s in self._sessions))
            tp.close(self)

    def network_changed(self, ip=None):
        """The network link came back (a Wi-Fi reconnect). ip: our address now, or None when it is configured.
        A new address moves the SIP and RTP sockets to it, and every Contact, Via and SDP built from now on carries
        it; every call and subscription gets AddressChanged, and the table says which refresh their target (RFC 3261
        12.2.1.1: a re-INVITE from a call in progress, held or muted; a re-SUBSCRIBE for message waiting). Then every
        account registers again, at once: the registrar may have dropped us, or still holds the old Contact."""
        moved = ip is not None and ip != self.local_ip
        if moved:
            self.emit("net address %s -> %s" % (self.local_ip, ip))
            self.local_ip = ip
            if self.rt is not None:
                tp.rebind(self)
                media.rebind(self)
        else:
            self.emit("net back on %s" % self.local_ip)
        if self.rt is None:
            return
        self.now = self.rt.now()
        for s in list(self._sessions):
            if s.kind == T.K_registration:
                registration.reregister(self, s, "network changed" if moved else "network back")
            elif moved and s.kind in (T.K_call, T.K_subscription):
                self.dispatch(s, T.E_AddressChanged)        # a state without a row for it is left alone

    def close(self):
        """Close every socket the phone holds (SIP UDP, TCP flows and listener, RTP/RTCP) without running the loop:
        the board goes on without the phone (Ctrl-C to the REPL)."""
        for s in list(self._sessions):
            media.release(self, s)
        tp.close(self, udp=True)

    def on_send_error(self, addr, err):
        if self.txl is not None:
            self.txl.on_transport_error((addr[0], addr[1], "udp"))

    # -- sessions ------------------------------------------------------------------------------------------
    def shed(self):
        """The loop met a MemoryError: give back what only saves work (answered transactions' responses), so the
        next datagram (a UDP peer repeats its request) finds room. -> transactions forgotten."""
        return self.txl.shed()

    def room(self):
        """Whether the heap has room for one more session (see _ROOM); collects only when it looks short."""
        if _mem_free is None or _mem_free() >= _ROOM:
            return True
        gc.collect()
        return _mem_free() >= _ROOM

    def heap_free(self):
        """Bytes the heap has free now; -1 on a runtime without the figure (CPython)."""
        return _mem_free() if _mem_free is not None else -1

    def new_session(self, kind, role=ROLE_BOTH, account=0):
        prefix = "crspb"[kind]
        n = self._n.get(prefix, 0) + 1
        self._n[prefix] = n
        s = Session("%s%d" % (prefix, n), kind, role)
        s.ctx = Ctx(account)
        self._sessions.append(s)
        return s

    def drop_session(self, s):
        media.release(self, s)
        self.timers = [t for t in self.timers if t[1] is not s]
        if s in self._sessions:
            self._sessions.remove(s)

    def calls(self):
        return [s for s in self._sessions if s.kind == T.K_call]

    def current_call(self):
        """The call user events go to: the newest one not yet over."""
        for s in reversed(self._sessions):
            if s.kind == T.K_call and s.state not in _FINAL_CALL:
                return s
        return None

    def busy(self, s, purpose):
        """s has a client transaction out for purpose (None: for any)."""
        return any(p == purpose or purpose is None for _c, p in s.ctx.txns)

    # -- dispatch ----------------------------------------------------------------------------------------
    def _observer(self, s, frm, ev, row):
        self.emit("tr %s %s %s %s %s" % (s.sid, T.STATES[frm], T.EVENTS[ev], state_text(s),
                                         self.engine.row_actions_text(row)))

    def dispatch(self, s, ev, args=None):
        """Run one event now, then whatever it queued. Returns the engine result."""
        res = self.engine.dispatch(s, ev, args)
        if res != OK and ev == T.E_MakeCall and s.kind == T.K_call and s.state == T.S_Idle and s.ctx.invite is None:
            # a call the phone dialled for another (a REFER's, a consultation, a conference participant) could not
            # even start: the one it was for hears so, nothing is left behind
            if s.ctx.extra.get("refer_of") is not None:
                transfer.notify(self, s.ctx.extra["refer_of"], 503, "Service Unavailable")
            elif s.ctx.extra.get("consult_of") is not None:
                from uphone.ua import attended      # loaded: it made the consultation
                attended.consult_failed(self, s)
            self.drop_session(s)
        if res == FAILED:
            self.emit("err %s %s in %s: %s %s" % (s.sid, T.EVENTS[ev], state_text(s),
                                                  T.ACTIONS[self.engine.last_action],
                                                  ("ok", "unsupported", "failed")[self.engine.last_error]))
        elif res == OK:
            self._after(s)
        while self.queue:
            s2, ev2, a2 = self.queue.pop(0)
            if s2 in self._sessions:
                self.dispatch(s2, ev2, a2)
        return res

    def post(self, s, ev, args=None):
        self.queue.append((s, ev, args))

    def _after(self, s):
        """Housekeeping the table implies: finished calls go back to Idle and are freed."""
        if s.kind == T.K_bridge:
            from uphone.ua import bridge            # loaded: it made the bridge
            bridge.progress(self, s)
        elif s.kind == T.K_call:
            # what a call's transition may set going in the other sessions: a REFER's report, the call a Replaces
            # took the place of; once the multi-leg modules are loaded (actions.lazy), the attended transfer's, the
            # bridge's and the conference's
            transfer.progress(self, s)
            if s.ctx.extra.get("replaces") is not None:
                from uphone.ua import replaces      # loaded: the INVITE with Replaces made this call
                replaces.progress(self, s)
            for m in self.multileg:
                m.progress(self, s)
            if s.state in _ENDING and not self.busy(s, "bye"):
                self.post(s, T.E_InternalCleanupComplete)
            elif s.state in _FINAL_CALL and not self.busy(s, None):
                self.emit("end %s %s" % (s.sid, state_text(s)))
                self.post(s, T.E_Reset)
            elif s.state == T.S_Idle and s.ctx.invite is not None:
                self.drop_session(s)

    def settle(self, s):
        """After a response or timeout: the housekeeping of s, then whatever was queued."""
        if s in self._sessions:
            self._after(s)
        self.drain()

    def drain(self):
        """Dispatch what was posted outside any dispatch (a conference's or bridge's frame step)."""
        while self.queue:
            s2, ev2, a2 = self.queue.pop(0)
            if s2 in self._sessions:
                self.dispatch(s2, ev2, a2)

    def user_event(self, sid, ev, args):
        """Console / keypad event -> (result, session, why)."""
        if sid is not None:
            s = next((x for x in self._sessions if x.sid == sid), None)
            if s is None:
                return UNHANDLED, None, "no session %s" % sid
        elif ev == T.E_MakeCall:
            if "target" not in args:
                return UNHANDLED, None, "MakeCall needs target=<sip uri or number>"
            s = self.new_session(T.K_call, ROLE_UAC, int(args.get("account", 0)))
        elif ev in (T.E_Register, T.E_Unregister, T.E_RefreshRegistration, T.E_SendOptions, T.E_SendMessage):
            s = next((x for x in self._sessions if x.kind == T.K_registration), None)
        elif ev in (T.E_Subscribe, T.E_Unsubscribe, T.E_RefreshSubscription):
            s = next((x for x in self._sessions if x.kind == T.K_subscription), None)
            if s is None and ev == T.E_Subscribe:
                s = self.new_session(T.K_subscription)
        elif ev in (T.E_PublishPresence, T.E_Unpublish):
            s = publication.session_of(self, int(args.get("account", 0)), ev == T.E_PublishPresence)
        else:
            s = self.current_call()
        if s is None:
            return UNHANDLED, None, "no session takes %s" % T.EVENTS[ev]
        if s.kind == T.K_call and ev in (T.E_MakeCall, T.E_AcceptCall, T.E_ResumeCall):
            # one conversation at a time, as on a desk phone: taking another line puts the active one on hold
            for o in self.calls():
                if o is not s and o.state == T.S_Active:
                    self.dispatch(o, T.E_HoldCall)
        res = self.dispatch(s, ev, args)
        if res != OK and s.kind == T.K_call and s.state == T.S_Idle and s.ctx.invite is None:
            self.drop_session(s)     # a MakeCall that did not start leaves nothing behind
        return res, s, ""

    # -- timers (each belongs to the state it was started for, and dies with it) -------------------------------
    def entering_state(self):
        """The state the transition being run will commit (actions run before the commit)."""
        r = self.engine.last_row
        return T.ROWS[r * 5 + 1] if r >= 0 else -1

    def start_timer(self, s, ms, ev, args=None, state=None):
        st = self.entering_state() if state is None else state
        self.timers.append([ticks_add(self.now, int(ms)), s, st, ev, args])

    def next_deadline(self):
        d = self.txl.next_deadline() if self.txl is not None else None
        for t in self.timers:
            if d is None or ticks_diff(t[0], d) < 0:
                d = t[0]
        m = tp.deadline(self)
        if m is not None and (d is None or ticks_diff(m, d) < 0):
            d = m
        m = call.timers_deadline(self)
        if m is not None and (d is None or ticks_diff(m, d) < 0):
            d = m
        m = audio.deadline(self)
        if m is not None and (d is None or ticks_diff(m, d) < 0):
            d = m
        return d

    def tick(self, now):
        self.now = now
        if self.txl is not None:
            self.txl.tick(now)
        tp.tick(self, now)
        call.timers_tick(self, now)
        for t in self.timers:           # scanned in place every pass; the lists are rebuilt only when one is due
            if ticks_diff(now, t[0]) >= 0:
                self._fire_timers(now)
                break
        audio.tick(self, now)

    def _fire_timers(self, now):
        due = [t for t in self.timers if ticks_diff(now, t[0]) >= 0]
        self.timers = [t for t in self.timers if ticks_diff(now, t[0]) < 0]
        for _d, s, st, ev, args in due:
            if s in self._sessions and s.state == st:
                self.dispatch(s, ev, args)

    # -- SIP in ------------------------------------------------------------------------------------------------
    def on_sip(self, data, src, proto="udp"):
        """One SIP message from src (host, port) over proto: a datagram, or one framed by a TCP flow."""
        self.now = self.rt.now()
        if data in (b"\r\n", b"\r\n\r\n"):       # UDP keepalive (RFC 5626 4.4.1; TCP ones stay in the flow)
            return
        src = (src[0], src[1], proto)
        if not gate.admit(self, data, src):
            return              # over its source's rate: dropped before it costs a parse (ua/gate.py)
        try:
            msg = P.parse(data)
        except P.ParseError as e:
            p = e.partial
            if p is not None and p.is_request and p.method != "ACK" and _can_answer(p):
                transport.stamp_received(p, src[0], src[1])
                self._stateless(p, e.code, e.reason, (), src)
            return
        if msg.is_request:
            transport.stamp_received(msg, src[0], src[1])
            if gate.scanner(self, msg):
                return          # a SIP scanner: no answer at all (ua/gate.py)
            if msg.method != "ACK":
                err = validate.check_request(msg, request.ALLOW, request.ACCEPT, request.supported(self))
                if err is None:
                    # after the 8.2.1 method checks, as 8.2.2.1 comes after them: a stranger when only the proxy
                    # may call (403), a user we are not (404); answered without a transaction or a session, so
                    # what it costs ends here
                    err = gate.check(self, msg, src)
                if err is not None:
                    self._stateless(msg, err[0], err[1], err[2], src)
                    return
        self.txl.receive(msg, src, self.now)

    def _stateless(self, req, code, reason, headers, src):
        resp = M.make_response(req, code, reason, to_tag=transport.new_tag() if not req.to_tag else None,
                               headers=list(headers) + request.common_headers(self))
        d = transport.response_dest(req, src)
        self.send_sip(resp.to_bytes(), d)

    def find_dialog(self, msg):
        """The session whose dialog (or INVITE) this in-dialog message belongs to."""
        cid, lt = msg.call_id, msg.to_tag if msg.is_request else msg.from_tag
        # a request without a To tag (an INVITE being answered) is told apart by its From tag: an INVITE with
        # Replaces shares its Call-ID with the dialog it replaces when the same peer sends both (RFC 3891 3)
        rt = msg.from_tag if lt is None and msg.is_request else None
        for s in self._sessions:
            c = s.ctx
            if c.call_id == cid and (lt is None or c.local_tag == lt) and \
                    (rt is None or c.dialog is None or c.dialog.remote_tag == rt):
                return s
        return None

    # transaction user (TransactionLayer calls these)
    def on_request(self, stx, msg, src):
        self.now = self.rt.now()
        m = msg.method
        if m == "INVITE" and not msg.to_tag:
            return call.incoming_invite(self, stx, msg, src)
        if m == "OPTIONS":
            return self.respond(stx, msg, 200, "OK", validate.options_response_headers(
                request.ALLOW, request.ACCEPT, request.supported(self)))
        if m == "CANCEL":
            return call.incoming_cancel(self, stx, msg)
        if m == "NOTIFY":
            return self._notify(stx, msg)
        if m == "MESSAGE":
            self.emit("msg %s %s" % (msg.get("From"), one_line(msg.body)))
            return self.respond(stx, msg, 200, "OK")
        s = self.find_dialog(msg)
        if m == "ACK":
            # only the dialog's own ACK stops our 2xx and its no-ACK timer: a stray one (other tags, RFC 3261
            # 12.2.2) left the call answered, never ACKed and never hung up (the fuzz found such a call still up)
            if s is not None and (s.ctx.dialog is None or msg.from_tag == s.ctx.dialog.remote_tag):
                self.txl.ack_received(msg.call_id, msg.cseq_num)
                self.dispatch(s, T.E_DialogACK, {"msg": msg})
            return
        if s is None or s.ctx.dialog is None or not msg.to_tag or msg.from_tag != s.ctx.dialog.remote_tag:
            # RFC 3261 12.2.2: a request is in a dialog only when its Call-ID and both tags match it; a BYE without
            # a To tag, or with another sender's From tag, belongs to no dialog of ours and changes nothing
            return self.respond(stx, msg, 481, "Call/Transaction Does Not Exist")
        if not s.ctx.dialog.check_remote_cseq(msg):
            return self.respond(stx, msg, 500, "CSeq Out of Order")
        ev = {"INVITE": T.E_DialogReINVITE, "BYE": T.E_DialogBYE, "UPDATE": T.E_DialogUPDATE,
              "INFO": T.E_DialogINFO, "REFER": T.E_DialogREFER, "PRACK": T.E_DialogPRACK}.get(m)
        if ev is None:
            return self.respond(stx, msg, 405, "Method Not Allowed", [("Allow", ", ".join(request.ALLOW))])
        if m == "PRACK" and not call.prack_matches(self, s, msg):
            return self.respond(stx, msg, 481, "Call/Transaction Does Not Exist")    # RFC 3262 3
        if m == "INVITE" and self.busy(s, "reinvite"):
            return self.respond(stx, msg, 491, "Request Pending")     # glare, RFC 3261 14.2
        if m in ("INVITE", "UPDATE") and call.too_small(self, msg):
            return self.respond(stx, msg, 422, "Session Interval Too Small",       # RFC 4028 8.1
                                [("Min-SE", str(call.too_small(self, msg)))])
        if m == "UPDATE" and msg.body and s.state in (T.S_Ringing, T.S_WaitingForPRACK) and s.role == ROLE_UAS:
            # RFC 3311 5.2: an offer while the INVITE's is still unanswered (our 1xx carried no SDP): 500 with
            # Retry-After; an UPDATE without one is answered by the Ringing row
            return self.respond(stx, msg, 500, "Server Internal Error", [("Retry-After", "2")])
        if m == "INFO" and media.dtmf_from_info(msg) is None:
            return self.respond(stx, msg, 415, "Unsupported Media Type", [("Accept", "application/dtmf-relay")])
        args = {"msg": msg, "stx": stx}
        if m == "INFO":
            args["digit"] = media.dtmf_from_info(msg)
        if msg.body and msg.get("Content-Type", ) and "sdp" in msg.get("Content-Type"):
            s.cond |= T.C_HasRemoteSDP
        if m in ("INVITE", "UPDATE"):
            s.ctx.dialog.refresh_target(msg)
        self.fail_answer = None
        if ev == T.E_DialogBYE and s.state == T.S_Bridged:
            from uphone.ua import bridge                # loaded: the call is bridged
            if bridge.takes_bye(self, s, args):
                return                                  # a bridged leg's BYE: its bridge ends both legs
        res = self.dispatch(s, ev, args)
        if res == UNHANDLED:
            code, why = (491, "Request Pending") if m in ("INVITE", "UPDATE") else (500, "Not Now")
            self.respond(stx, msg, code, why)
        elif res == FAILED:
            err = self.last_sdp_error
            code, why = self.fail_answer or (err or 500, "Not Acceptable Here" if err == 488 else "Server Error")
            self.respond(stx, msg, code, why)

    def _notify(self, stx, msg):
        """A NOTIFY goes to the kind its Event package belongs to: refer (a transfer we asked for), message-summary."""
        event = (msg.get("Event") or "").split(";")[0].strip().lower()
        s = self.find_dialog(msg)
        if event == "refer" and s is not None and s.kind == T.K_call:
            return transfer.incoming_notify(self, stx, msg, s)
        if event == "message-summary":
            return subscription.incoming_notify(self, stx, msg, s)
        if s is None:
            return self.respond(stx, msg, 481, "Subscription Does Not Exist")
        return self.respond(stx, msg, 489, "Bad Event", [("Allow-Events", "message-summary, refer")])

    def respond(self, stx, req, code, reason, headers=(), body=b"", ctype=None):
        to_tag = None
        if not req.to_tag and code > 100:
            s = self.find_dialog(req)
            to_tag = s.ctx.local_tag if s is not None else transport.new_tag()
        hs = list(headers) + request.common_headers(self)
        if body:
            hs.append(("Content-Type", ctype or "application/sdp"))
        resp = M.make_response(req, code, reason, to_tag=to_tag, headers=hs, body=body)
        stx.respond(resp, self.now)
        return resp

    def on_response(self, ctx, msg):
        self.now = self.rt.now()
        owner = None
        for s in self._sessions:
            for t in s.ctx.txns:
                if t[0] is ctx:
                    owner = (s, t)
                    break
            if owner:
                break
        if owner is None:
            # a 2xx retransmission or a forked 2xx after the INVITE transaction ended: ACK it (and end extra forks)
            if msg.cseq_method == "INVITE" and 200 <= msg.status < 300:
                call.stray_2xx(self, msg)
            return
        s, t = owner
        if msg.status >= 200:
            s.ctx.txns.remove(t)
        if msg.status in (401, 407) and t[1] != "keepalive" and request.retry_with_auth(self, s, t, msg):
            return
        if 300 <= msg.status < 400 and transfer.follow_redirect(self, s, t, msg):
            return
        self._response_event(s, t[1], msg)

    def _response_event(self, s, purpose, msg):
        """A response to a request session s sent for purpose -> the table event of s's kind."""
        st = msg.status
        if purpose in ("invite", "reinvite", "bye", "refresh", "update"):
            ev = call.response_event(self, s, purpose, msg)
            if ev is None:
                return
        elif purpose in ("register", "unregister", "subscribe", "publish", "unpublish"):
            if st < 200:
                return
            ev = request.final_event(st)
        elif purpose == "refer":
            ev = -1
            if st >= 300:
                ev = T.E_TransferFailed
                if s.ctx.extra.get("consult") is not None:
                    from uphone.ua import attended      # loaded: it made the consultation
                    ev = attended.refer_failed_event(self, s, st)
        else:
            ev = -1
        if st >= 200 and purpose not in ("invite", "reinvite", "update"):
            self.emit("resp %s %s %d %s" % (s.sid, purpose, st, msg.reason))
        if ev < 0:
            self.settle(s)
            return
        res = self.dispatch(s, ev, {"msg": msg, "status": st})
        if res == UNHANDLED and purpose == "invite" and 200 <= st < 300:
            call.stray_2xx(self, msg)
        self.settle(s)

    def on_timeout(self, ctx):
        self.now = self.rt.now()
        for s in list(self._sessions):
            for t in s.ctx.txns:
                if t[0] is ctx:
                    s.ctx.txns.remove(t)
                    self._timeout_event(s, t[1])
                    return

    def _timeout_event(self, s, purpose):
        self.emit("timeout %s %s" % (s.sid, purpose))
        if purpose in ("invite", "reinvite", "register", "unregister", "subscribe", "bye", "publish", "unpublish",
                       "refresh"):
            self.dispatch(s, T.E_DialogTimeout, {"status": 408})
        elif purpose == "refer":
            self.dispatch(s, T.E_TransferFailed, {"status": 408})
        elif purpose == "keepalive":
            tp.keepalive_failed(self, s)
        self.settle(s)

    def on_prack_timeout(self, stx):
        call.prack_timeout(self, stx)

    def on_ack_timeout(self, key):
        # our 2xx was never ACKed: the session ends with a BYE (RFC 3261 13.3.1.4)
        for s in self._sessions:
            if s.kind == T.K_call and s.ctx.call_id == key[0]:
                self.emit("err %s no ACK for our 200 OK: hanging up" % s.sid)
                self.dispatch(s, T.E_HangupCall)
                return

    # -- SIP out -------------------------------------------------------------------------------------------
    def send_request(self, s, msg, dest, purpose):
        """Start a client transaction owned by session s."""
        c = self.txl.request(msg, dest, self.now)
        s.ctx.txns.append([c, purpose])
        return c

    def send_sip(self, data, dest):
        """Bytes outside a client transaction (responses, ACKs for 2xx) to dest (host, port, transport[, sent-by])."""
        tp.send(self, data, dest)

    def status_lines(self):
        out = []
        for s in self._sessions:
            c = s.ctx
            if s.kind == T.K_call:
                n = c.neg
                out.append("leg %s %s remote=%s codec=%s rtp=%s:%d dir=%s flowing=%d routes=%d" % (
                    s.sid, state_text(s), c.remote_uri or "-", n.codec if n else "-", n.remote_addr if n else "-",
                    n.remote_port if n else 0, n.direction if n else c.local_dir, 1 if c.flowing else 0,
                    len(c.dialog.route_set) if c.dialog is not None else 0))
            if c.media is not None:
                st = c.media.stats()
                # concealed: frames the jitter buffer made up for lost ones (PLC); late: packets past their play
                # time; peer_lost: what the far end's last RTCP report says it lost of ours
                out.append("media %s sent=%d received=%d lost=%d jitter_ms=%.1f mos=%.2f concealed=%d late=%d "
                           "peer_lost=%d dtmf=%s srtp=%s srtp_refused=%d auth_failed=%d replayed=%d" % (
                               s.sid, st.get("sent", 0), st.get("received", 0), st.get("lost", 0),
                               st.get("jitter_ms", 0.0), st.get("mos", 0.0), st.get("concealed", 0),
                               st.get("late", 0), st.get("peer_lost", 0) or 0, c.digits or "-", st.get("srtp") or "-",
                               st.get("srtp_refused", 0), st.get("srtp_auth_failed", 0), st.get("srtp_replayed", 0)))
        for x in self.mixes:
            out.append(x.status())
        out.extend(audio.status_lines(self))
        out.extend(gate.status_lines(self))
        out.extend(tp.status_lines(self))
        if self.mwi is not None:
            out.append("mwi %s %s" % ("on" if self.mwi[0] else "off", self.mwi[1]))
        return out


def _can_answer(p):
    try:
        return bool(p.get("Via") and p.call_id and p.get("From") and p.get("To") and p.get("CSeq"))
    except Exception:
        return False
