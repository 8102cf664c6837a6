# Registration, message-waiting subscription, OPTIONS and MESSAGE: the actions of the registration and
# subscription kinds. Mixed into uphone.phone.Phone.
from uphone import table as T
from uphone.engine import ERR_FAILED
from uphone.sip import message as M
from uphone.sip import transport
from uphone.sip.dialog import Dialog
from uphone.sip.auth import DigestClient


class RegActions:
    _auth = None

    def auth_client(self, i):
        if self._auth is None:
            self._auth = {}
        if i not in self._auth:
            accts = self.cfg.get("accounts") or []
            if i >= len(accts) or not accts[i].get("password"):
                return None
            a = accts[i]
            self._auth[i] = DigestClient(a.get("auth_user") or a["user"], a["password"])
        return self._auth[i]

    def start_accounts(self):
        for i, a in enumerate(self.cfg.get("accounts") or []):
            if a.get("registrar") and a.get("register", True):
                s = self.new_session(T.K_registration, account=i)
                s.ctx.call_id = transport.new_call_id(self.local_ip)   # one Call-ID per binding (RFC 3261 10.2.4)
                s.ctx.local_tag = transport.new_tag()
                s.ctx.extra["cseq"] = 0
                self.dispatch(s, T.E_Register)

    def _register(self, s, expires, purpose):
        c = s.ctx
        acct = self.account(s)
        c.extra["cseq"] = c.extra.get("cseq", 0) + 1
        aor = self.aor(acct)
        reg = acct["registrar"]
        uri = reg if reg.startswith("sip") else "sip:" + reg
        dest = self.first_hop(acct, uri)
        hs = [("Via", self.via(dest)), ("Max-Forwards", "70"), ("From", "<%s>;tag=%s" % (aor, c.local_tag)),
              ("To", "<%s>" % aor), ("Call-ID", c.call_id), ("CSeq", "%d REGISTER" % c.extra["cseq"]),
              ("Contact", "%s;expires=%d" % (self.contact(acct), expires)), ("Expires", str(expires)),
              ("Allow", ", ".join(self.allow()))] + self.common_headers()
        req = M.make_request("REGISTER", uri, hs)
        auth = self.auth_client(c.account)
        if auth is not None:
            auth.apply_cached(req)
        self.send_request(s, req, dest, purpose)
        return 0

    def a_SendREGISTER(self, s, arg, ev):
        return self._register(s, int(s.ctx.extra.get("min_expires") or self.account(s).get("expires", 600)),
                              "register")

    def a_SendUnregister(self, s, arg, ev):
        return self._register(s, 0, "unregister")

    def a_StoreRegistration(self, s, arg, ev):
        msg = (ev or {}).get("msg")
        if msg is None:
            return ERR_FAILED
        c = s.ctx
        want = int(self.account(s).get("expires", 600))
        granted = None
        mine = "%s:%d" % (self.local_ip, self.local_port)
        for v in msg.get_all("Contact"):
            na = M.parse_name_addr(v)
            if mine in na.uri and "expires" in na.params:
                granted = int(na.params["expires"])
        if granted is None and msg.get("Expires"):
            granted = int(msg.get("Expires"))
        c.extra["expires"] = granted if granted is not None else want
        c.extra["fails"] = 0
        self.emit("reg %s registered %s expires=%d" % (s.sid, self.aor(self.account(s)), c.extra["expires"]))
        if self.cfg.get("features", {}).get("voicemail_uri") and not any(
                x.kind == T.K_subscription for x in self._sessions):
            sub = self.new_session(T.K_subscription, account=c.account)
            self.post(sub, T.E_Subscribe)
        return 0

    def a_StartRegistrationRefreshTimer(self, s, arg, ev):
        e = s.ctx.extra.get("expires", 600)
        # refresh with a margin: at 80% of the interval, at most 30 s before expiry for long ones
        ms = max(1000, min(e * 800, (e - 30) * 1000 if e > 150 else e * 800))
        if s.ctx.extra.pop("moved", False):
            ms = 0              # the network changed while this REGISTER was out: register the new Contact now
        self.start_timer(s, ms, T.E_RefreshRegistration)
        return 0

    def reregister(self, s, why):
        """Register again now (the network came back): a refresh when registered, the waiting retry brought forward
        after a failure, and after the answer when a REGISTER is out (it went from the old address)."""
        c = s.ctx
        if s.state == T.S_Registered:
            self._reg_refresh_now(s, 0, why)
        elif s.state == T.S_Registering:
            c.extra["moved"] = True
        elif s.state == T.S_Idle and any(t[1] is s and t[3] == T.E_Register for t in self.timers):
            self.timers = [t for t in self.timers if not (t[1] is s and t[3] == T.E_Register)]
            c.extra["fails"] = 0
            self.emit("reg %s %s, register now" % (s.sid, why))
            self.start_timer(s, 0, T.E_Register, state=T.S_Idle)

    def a_HandleRegistrationFailure(self, s, arg, ev):
        c = s.ctx
        msg = (ev or {}).get("msg")
        st = (ev or {}).get("status", 0)
        if st == 423 and msg is not None and msg.get("Min-Expires"):
            c.extra["min_expires"] = int(msg.get("Min-Expires"))     # RFC 3261 10.3: ask again, longer
            self.start_timer(s, 0, T.E_Register)
            return 0
        n = c.extra.get("fails", 0) + 1
        c.extra["fails"] = n
        base = int(self.cfg["sip"].get("register_retry_s", 30))
        delay = min(base * (1 << min(n - 1, 6)), 1800)      # exponential backoff, capped (RFC 5626 4.5 style)
        if c.extra.pop("moved", False):
            delay = 0           # it failed from the old address: the new one gets its chance at once
        self.emit("reg %s failed (%s), retry in %d s" % (s.sid, st or "timeout", delay))
        self.start_timer(s, delay * 1000, T.E_Register)
        return 0

    def a_ClearRegistration(self, s, arg, ev):
        s.ctx.extra.pop("expires", None)
        self.emit("reg %s unregistered" % s.sid)
        return 0

    def _out_of_dialog(self, s, method, uri, extra=(), body=b"", ctype=None):
        acct = self.account(s)
        dest = self.first_hop(acct, uri)
        hs = [("Via", self.via(dest)), ("Max-Forwards", "70"),
              ("From", self.from_header(acct, transport.new_tag())), ("To", "<%s>" % uri),
              ("Call-ID", transport.new_call_id(self.local_ip)), ("CSeq", "1 %s" % method)] + list(extra)
        if ctype:
            hs.append(("Content-Type", ctype))
        req = M.make_request(method, uri, hs + self.common_headers(), body)
        return req, dest

    def a_SendOPTIONS(self, s, arg, ev):
        acct = self.account(s)
        uri = (ev or {}).get("to") or acct.get("registrar") or self.aor(acct)
        req, dest = self._out_of_dialog(s, "OPTIONS", uri, [("Accept", "application/sdp")])
        self.send_request(s, req, dest, "options")
        return 0

    def a_SendMESSAGE(self, s, arg, ev):
        ev = ev or {}
        if not ev.get("to") or "body" not in ev:
            self.emit("err %s SendMessage needs to=<uri> body=<text>" % s.sid)
            return ERR_FAILED
        uri = self.target_uri(self.account(s), ev["to"])
        req, dest = self._out_of_dialog(s, "MESSAGE", uri, body=ev["body"].encode(), ctype="text/plain")
        self.send_request(s, req, dest, "message")
        return 0

    # -- message-waiting indication (RFC 3842 over RFC 6665) -----------------------------------------------
    def _mwi_uri(self, s):
        acct = self.account(s)
        return self.cfg.get("features", {}).get("voicemail_uri") or self.aor(acct)

    def a_SendSUBSCRIBE(self, s, arg, ev):
        c = s.ctx
        if self._busy(s, "subscribe"):
            # one SUBSCRIBE at a time: a target refresh asked for while one is out (our address changed under it)
            # goes when that one is answered (StoreSubscription / HandleSubscriptionFailure)
            c.extra["resubscribe"] = True
            return 0
        hs = [("Event", "message-summary"), ("Accept", "application/simple-message-summary"),
              ("Expires", "3600")]
        if c.dialog is not None:
            req, dest = self.dialog_request(s, "SUBSCRIBE", extra=hs)
        else:
            acct = self.account(s)
            c.call_id = transport.new_call_id(self.local_ip)
            c.local_tag = transport.new_tag()
            uri = self._mwi_uri(s)
            dest = self.first_hop(acct, uri)
            req = M.make_request("SUBSCRIBE", uri, [
                ("Via", self.via(dest)), ("Max-Forwards", "70"), ("From", self.from_header(acct, c.local_tag)),
                ("To", "<%s>" % uri), ("Call-ID", c.call_id), ("CSeq", "1 SUBSCRIBE"),
                ("Contact", self.contact(acct))] + hs + self.common_headers())
            c.invite = req
        self.send_request(s, req, dest, "subscribe")
        return 0

    def a_StoreSubscription(self, s, arg, ev):
        c = s.ctx
        msg = (ev or {}).get("msg")
        if msg is None:
            return ERR_FAILED
        if c.dialog is None and c.invite is not None:
            c.dialog = Dialog.uac(c.invite, msg)
        exp = int(msg.get("Expires") or 3600)
        # an early refresh (a new address) answered: its timer replaces the one still waiting
        self.timers = [t for t in self.timers if not (t[1] is s and t[3] == T.E_RefreshSubscription)]
        ms = 0 if c.extra.pop("resubscribe", False) else max(1000, exp * 800)
        self.start_timer(s, ms, T.E_RefreshSubscription)
        return 0

    def a_SendUnsubscribe(self, s, arg, ev):
        if s.ctx.dialog is None:
            return ERR_FAILED
        req, dest = self.dialog_request(s, "SUBSCRIBE", extra=[("Event", "message-summary"), ("Expires", "0")])
        self.send_request(s, req, dest, "unsubscribe")
        return 0

    def a_ProcessNotification(self, s, arg, ev):
        msg = (ev or {}).get("msg")
        if msg is None:
            return ERR_FAILED
        c = s.ctx
        if c.dialog is None and c.invite is not None:
            # the NOTIFY overtook the 2xx (RFC 6665 4.1.2.4): its From tag is the remote tag
            c.dialog = Dialog.uac_from_notify(c.invite, msg) if hasattr(Dialog, "uac_from_notify") else c.dialog
        self.process_mwi(msg.body)
        return 0

    def process_mwi(self, body):
        waiting, counts = False, ""
        for line in body.decode("utf-8", "replace").splitlines():
            k, _, v = line.partition(":")
            k, v = k.strip().lower(), v.strip()
            if k == "messages-waiting":
                waiting = v.lower() == "yes"
            elif k == "voice-message":
                counts = v.split()[0] if v else ""
        self.mwi = (waiting, counts)
        self.emit("mwi %s %s" % ("on" if waiting else "off", counts or "-"))

    def a_HandleSubscriptionFailure(self, s, arg, ev):
        s.ctx.dialog = None
        # it failed from the old address (its answer went there): the new one gets its chance at once
        self.start_timer(s, 0 if s.ctx.extra.pop("resubscribe", False) else 60000, T.E_Subscribe)
        return 0
