# Call-leg behaviour of the phone: incoming requests for calls, responses -> table events, and the SIP actions
# of the call kind (INVITE, ACK, CANCEL, BYE, re-INVITE, REFER, INFO, UPDATE). Mixed into uphone.phone.Phone.
from uphone import table as T
from uphone.engine import OK, UNHANDLED, ERR_FAILED, ROLE_UAS
from uphone.sip import message as M
from uphone.sip import parse as P
from uphone.sip import headers as H
from uphone.sip import transport
from uphone.sip.dialog import Dialog
from uphone.sip.uri import parse_uri

_ACTIVE = (T.S_Idle, T.S_Terminated, T.S_Cancelled, T.S_Failed)


def _has_sdp(msg):
    ct = msg.get("Content-Type") or ""
    return bool(msg.body) and "application/sdp" in ct.lower()


class CallActions:
    last_sdp_error = 0

    # -- addressing ---------------------------------------------------------------------------------------
    def account(self, s):
        accts = self.cfg.get("accounts") or [{}]
        return accts[min(s.ctx.account, len(accts) - 1)]

    def aor(self, acct):
        return "sip:%s@%s" % (acct.get("user", "uphone"), acct.get("domain", self.local_ip))

    def from_header(self, acct, tag):
        disp = acct.get("display_name") or ""
        return ('"%s" <%s>;tag=%s' % (disp, self.aor(acct), tag)) if disp else "<%s>;tag=%s" % (self.aor(acct), tag)

    def contact(self, acct):
        tp = ";transport=tcp" if self.tport == "tcp" else ""
        return "<sip:%s@%s:%d%s>" % (acct.get("user", "uphone"), self.local_ip, self.local_port, tp)

    def via(self, dest=None):
        """Our Via for a request going to dest (its transport, RFC 3261 18.1.1), else over sip.transport."""
        tp = dest[2] if dest is not None and len(dest) > 2 else self.tport
        return transport.make_via(self.local_ip, self.local_port, tp.upper(), transport.new_branch())

    def target_uri(self, acct, target):
        """A dialled number or user becomes sip:<it>@<domain>; a full URI stays."""
        t = target.strip()
        if t.startswith("<") and t.endswith(">"):
            t = t[1:-1]
        if not (t.startswith("sip:") or t.startswith("sips:")):
            t = "sip:%s@%s" % (t, acct.get("domain", self.local_ip))
        parse_uri(t)     # refuse garbage before anything is sent (ValueError)
        return t

    def hop(self, uri):
        u = parse_uri(uri)
        port = u.port or 5060
        host = u.params.get("maddr") or u.host
        tp = (u.params.get("transport") or "").lower()     # the URI's transport, else ours (RFC 3263 4.1 short)
        return (host, port, tp if tp in ("udp", "tcp") else self.tport)

    def first_hop(self, acct, uri):
        """Outbound proxy when configured (RFC 3261 8.1.2), else the request URI's host."""
        return self.hop(acct.get("proxy") or uri)

    def clone_request(self, req):
        return P.parse(req.to_bytes())

    # -- incoming -------------------------------------------------------------------------------------------
    def incoming_invite(self, stx, msg, src):
        feats = self.cfg.get("features", {})
        busy = [x for x in self.calls() if x.state not in _ACTIVE]
        if feats.get("dnd"):
            return self.respond(stx, msg, 486, "Busy Here", [("Warning", '399 uphone "Do not disturb"')])
        if (busy and not feats.get("call_waiting", True)) or not self.line_free():
            # every line carries a call (features.lines): no session is made for one more
            return self.respond(stx, msg, 486, "Busy Here")
        s = self.new_session(T.K_call, ROLE_UAS)
        c = s.ctx
        c.invite, c.invite_stx, c.call_id = msg, stx, msg.call_id
        c.local_tag = transport.new_tag()
        c.remote_uri = H.parse_name_addr(msg.get("From")).uri
        c.dialog = Dialog.uas(msg, c.local_tag, self.contact(self.account(s)))
        if _has_sdp(msg):
            s.cond |= T.C_HasRemoteSDP
        self.last_sdp_error = 0
        res = self.dispatch(s, T.E_IncomingCall, {"msg": msg, "from": c.remote_uri})
        if res != OK:
            if self.last_sdp_error:
                self.respond(stx, msg, 488, "Not Acceptable Here")
            else:
                self.respond(stx, msg, 500, "Server Internal Error")
            self.drop_session(s)
            return
        self.emit("ring %s from %s%s" % (s.sid, c.remote_uri, " (call waiting)" if busy else ""))
        ring_s = int(feats.get("ring_timeout_s", 60))
        self.start_timer(s, ring_s * 1000, T.E_DialogTimeout, state=T.S_Ringing)
        if feats.get("auto_answer"):
            self.start_timer(s, int(feats.get("auto_answer_delay_ms", 0)), T.E_AcceptCall, state=T.S_Ringing)

    def incoming_cancel(self, stx, msg):
        target = getattr(stx, "cancel_target", None)
        s = None
        for x in self.calls():
            if target is not None and x.ctx.invite_stx is target:
                s = x
        if s is None:
            return self.respond(stx, msg, 481, "Call/Transaction Does Not Exist")
        self.respond(stx, msg, 200, "OK")
        # no "stx" in the args: the table's 487 goes to the INVITE, not to the CANCEL (RFC 3261 9.2)
        self.dispatch(s, T.E_DialogCANCEL, {"msg": msg})

    def incoming_notify(self, stx, msg):
        event = (msg.get("Event") or "").split(";")[0].strip().lower()
        s = self.find_dialog(msg)
        if event == "refer" and s is not None and s.kind == T.K_call:
            res = self.dispatch(s, T.E_DialogNOTIFY, {"msg": msg, "stx": stx})
            if res != OK:
                return self.respond(stx, msg, 200, "OK")
            code = _sipfrag_status(msg.body)
            if code >= 300:
                self.dispatch(s, T.E_TransferFailed, {"status": code})
            elif code >= 200:
                self.dispatch(s, T.E_TransferSuccess, {"status": code})
            return
        if event == "message-summary":
            if s is not None and s.kind == T.K_subscription:
                res = self.dispatch(s, T.E_DialogNOTIFY, {"msg": msg, "stx": stx})
                if res == OK and "terminated" in (msg.get("Subscription-State") or "").lower():
                    self.dispatch(s, T.E_SubscriptionTerminated)
                if res == OK:
                    return
            # unsolicited MWI (Asterisk sends these without a subscription): light the lamp, say 200
            self.process_mwi(msg.body)
            return self.respond(stx, msg, 200, "OK")
        if s is None:
            return self.respond(stx, msg, 481, "Subscription Does Not Exist")
        return self.respond(stx, msg, 489, "Bad Event", [("Allow-Events", "message-summary, refer")])

    def dtmf_from_info(self, msg):
        from uphone.media import dtmf
        return dtmf.parse_info(msg.body, msg.get("Content-Type") or "")

    # -- responses and timeouts -> table events ------------------------------------------------------------
    def response_event(self, s, purpose, msg):
        st = msg.status
        c = s.ctx
        args = {"msg": msg, "status": st}
        ev = -1
        if purpose == "invite":
            if st < 200:
                if st == 100:
                    return
                if c.cancel_pending:
                    c.cancel_pending = False
                    self.send_cancel(s)
                if msg.to_tag and (c.dialog is None or c.dialog.remote_tag != msg.to_tag):
                    c.dialog = Dialog.uac(c.invite, msg)
                if st == 183 and _has_sdp(msg):
                    s.cond |= T.C_HasRemoteSDP
                    ev = T.E_Dialog183SessionProgress
                else:
                    ev = T.E_Dialog180Ringing
            elif st < 300:
                if c.dialog is None or c.dialog.remote_tag != msg.to_tag:
                    c.dialog = Dialog.uac(c.invite, msg)
                else:
                    c.dialog.confirm(msg)
                if _has_sdp(msg):
                    s.cond |= T.C_HasRemoteSDP
                ev = T.E_Dialog200OK
            else:
                c.extra["final"] = (st, msg.reason)     # a transferor hears how the call it asked for ended
                if st < 500:
                    # a 3xx that reaches the table could not be followed (loop, no Contact, 305/380; see
                    # follow_redirect): it fails like a 4xx. The seed TODO's Redirecting state is not needed
                    ev = T.E_Dialog4xxFailure
                elif st < 600:
                    ev = T.E_Dialog5xxFailure
                else:
                    ev = T.E_Dialog6xxFailure
        elif purpose == "reinvite":
            if st < 200:
                return
            if c.extra.pop("reinvite_next", False):
                # the answer to an offer the user has since changed (hold, then resume): ACK a 2xx, keep the table
                # where it is and send the newer offer, whose answer then moves the call
                if st < 300:
                    self.ack_2xx(s, msg)
                self.emit("reinvite %s %d to a superseded offer: sending the newer one" % (s.sid, st))
                self.a_SendReINVITE(s, None, None)
                self.settle(s)
                return
            if st < 300:
                if _has_sdp(msg):
                    s.cond |= T.C_HasRemoteSDP
                ev = T.E_Dialog200OK
            elif st == 491:
                ev = T.E_Dialog491Glare
            elif st in (408, 481):
                ev = T.E_DialogTimeout       # RFC 3261 14.1: the dialog is gone
            else:
                ev = T.E_Dialog4xxFailure
        elif purpose == "bye":
            if st >= 200 and s.state == T.S_Terminating:
                ev = T.E_InternalCleanupComplete
        elif purpose in ("register", "unregister", "subscribe"):
            if st < 200:
                return
            ev = (T.E_Dialog200OK if st < 300 else T.E_Dialog4xxFailure if st < 500 else
                  T.E_Dialog5xxFailure if st < 600 else T.E_Dialog6xxFailure)
        elif purpose == "refer":
            if st >= 300:
                ev = T.E_TransferFailed
        if st >= 200 and purpose not in ("invite", "reinvite"):
            self.emit("resp %s %s %d %s" % (s.sid, purpose, st, msg.reason))
        if ev < 0:
            self.settle(s)
            return
        res = self.dispatch(s, ev, args)
        if res == UNHANDLED and purpose == "invite" and 200 <= st < 300:
            self.stray_2xx(msg)
        self.settle(s)

    def timeout_event(self, s, purpose):
        self.emit("timeout %s %s" % (s.sid, purpose))
        if purpose in ("invite", "reinvite", "register", "unregister", "subscribe", "bye"):
            self.dispatch(s, T.E_DialogTimeout, {"status": 408})
        elif purpose == "refer":
            self.dispatch(s, T.E_TransferFailed, {"status": 408})
        elif purpose == "keepalive":
            self.keepalive_failed(s)
        self.settle(s)

    def settle(self, s):
        if s in self._sessions:
            self._after(s)
        while self.queue:
            s2, ev2, a2 = self.queue.pop(0)
            if s2 in self._sessions:
                self.dispatch(s2, ev2, a2)

    def stray_2xx(self, msg):
        """A 2xx with no transaction: a retransmission (re-ACK) or another fork's answer (ACK, then BYE)."""
        for s in self.calls():
            c = s.ctx
            if c.call_id != msg.call_id:
                continue
            if c.dialog is not None and c.dialog.remote_tag == msg.to_tag and c.last_ack is not None:
                self._send_sip(c.last_ack[0], c.last_ack[1])
                return
            if c.invite is not None:
                d = Dialog.uac(c.invite, msg)
                ack, hop = d.create_request("ACK")
                dest = self.hop(hop)
                ack.add_first("Via", self.via(dest))
                self._send_sip(ack.to_bytes(), dest)
                bye, hop = d.create_request("BYE")
                bye.add_first("Via", self.via(dest))
                self.txl.request(bye, dest, self.now)
                return

    def retry_with_auth(self, s, t, resp):
        """401/407: add credentials and send the request again (RFC 3261 22.2); False when we cannot."""
        ctx, purpose = t
        acct_i = s.ctx.account
        auth = self.auth_client(acct_i)
        if auth is None:
            return False
        req = self.clone_request(ctx.request)
        if not auth.authorize(resp, req):
            self.emit("auth %s %s refused by %d %s" % (s.sid, purpose, resp.status, resp.reason))
            return False
        self.emit("auth %s %s challenged by %d: answered" % (s.sid, purpose, resp.status))
        dest = ctx.dest if hasattr(ctx, "dest") else self.first_hop(self.account(s), req.uri)
        req.set("Via", self.via(dest))
        num = req.cseq_num + 1
        req.set("CSeq", "%d %s" % (num, req.method))
        if s.ctx.dialog is not None and purpose not in ("invite", "register", "unregister"):
            s.ctx.dialog.local_cseq = num
        if purpose == "invite":
            s.ctx.invite = req
        if purpose in ("register", "unregister"):
            s.ctx.extra["cseq"] = num
        c2 = self.send_request(s, req, dest, purpose)
        if purpose == "invite":
            s.ctx.invite_ctx = c2
        return True

    # -- in-dialog requests ------------------------------------------------------------------------------
    def dialog_request(self, s, method, body=b"", ctype=None, extra=()):
        c = s.ctx
        hs = list(extra) + self.common_headers()
        msg, hop = c.dialog.create_request(method, contact=self.contact(self.account(s)), body=body,
                                           content_type=ctype, extra=hs)
        dest = self.hop(hop)
        msg.add_first("Via", self.via(dest))
        auth = self.auth_client(c.account)
        if auth is not None:
            auth.apply_cached(msg)
        return msg, dest

    # -- actions: call signalling --------------------------------------------------------------------------
    def a_CreateDialog(self, s, arg, ev):
        c = s.ctx
        acct = self.account(s)
        try:
            c.remote_uri = self.target_uri(acct, (ev or {}).get("target", ""))
        except ValueError:
            self.emit("err %s bad target %r" % (s.sid, (ev or {}).get("target")))
            return ERR_FAILED
        c.call_id = transport.new_call_id(self.local_ip)
        c.local_tag = transport.new_tag()
        c.extra["cseq"] = 1
        return 0

    def a_SendINVITE(self, s, arg, ev):
        c = s.ctx
        acct = self.account(s)
        dest = self.first_hop(acct, c.remote_uri)
        hs = [("Via", self.via(dest)), ("Max-Forwards", "70"), ("From", self.from_header(acct, c.local_tag)),
              ("To", "<%s>" % c.remote_uri), ("Call-ID", c.call_id), ("CSeq", "%d INVITE" % c.extra["cseq"]),
              ("Contact", self.contact(acct)), ("Allow", ", ".join(self.allow())),
              ("Content-Type", "application/sdp")] + self.common_headers()
        hs += list((ev or {}).get("headers", ()))    # e.g. Replaces / Referred-By carried by a REFER's Refer-To
        req = M.make_request("INVITE", c.remote_uri, hs, c.local_sdp)
        auth = self.auth_client(c.account)
        if auth is not None:
            auth.apply_cached(req)
        c.invite = req
        c.invite_ctx = self.send_request(s, req, dest, "invite")
        self.emit("call %s to %s" % (s.sid, c.remote_uri))
        return 0

    def allow(self):
        from uphone.phone import ALLOW
        return ALLOW

    def send_cancel(self, s):
        c = s.ctx
        cancel = c.invite_ctx.cancel_request()
        self.send_request(s, cancel, c.invite_ctx.dest, "cancel")

    def a_SendCANCEL(self, s, arg, ev):
        c = s.ctx
        if c.invite_ctx is None:
            return ERR_FAILED
        if getattr(c.invite_ctx, "got_provisional", False):
            self.send_cancel(s)
        else:
            c.cancel_pending = True      # RFC 3261 9.1: wait for a provisional response before cancelling
        return 0

    def a_SendACK(self, s, arg, ev):
        return self.ack_2xx(s, (ev or {}).get("msg"))

    def ack_2xx(self, s, msg):
        """ACK a 2xx to our INVITE or re-INVITE (RFC 3261 13.2.2.4): a new request in the dialog."""
        c = s.ctx
        if msg is not None and (c.dialog is None or c.dialog.remote_tag != msg.to_tag):
            c.dialog = Dialog.uac(c.invite, msg)
        if c.dialog is None:
            return ERR_FAILED
        ack, hop = c.dialog.create_request("ACK")
        if msg is not None:
            ack.set("CSeq", "%d ACK" % msg.cseq_num)   # the ACK carries the CSeq number of the INVITE it answers
        dest = self.hop(hop)
        ack.add_first("Via", self.via(dest))
        auth = self.auth_client(c.account)
        if auth is not None:
            auth.apply_cached(ack)
        data = ack.to_bytes()
        c.last_ack = (data, dest)
        self._send_sip(data, dest)
        return 0

    def a_SendBYE(self, s, arg, ev):
        c = s.ctx
        if c.dialog is None:
            return ERR_FAILED
        bye, dest = self.dialog_request(s, "BYE")
        self.send_request(s, bye, dest, "bye")
        return 0

    def a_SendSIPResponse(self, s, arg, ev):
        ev = ev or {}
        stx = ev.get("stx") or s.ctx.invite_stx
        req = ev.get("msg") if ev.get("stx") else s.ctx.invite
        if stx is None or req is None:
            return ERR_FAILED
        hs = []
        if req.method == "INVITE" and arg[0] < 300:
            hs.append(("Contact", self.contact(self.account(s))))
        self.respond(stx, req, arg[0], arg[1], hs)
        return 0

    def a_Send200OK(self, s, arg, ev):
        ev = ev or {}
        c = s.ctx
        stx = ev.get("stx") or c.invite_stx
        req = ev.get("msg") if ev.get("stx") else c.invite
        if stx is None or req is None:
            return ERR_FAILED
        hs = [("Contact", self.contact(self.account(s)))]
        body = b""
        if req.method in ("INVITE", "UPDATE"):
            hs.append(("Allow", ", ".join(self.allow())))
            # our answer, or our offer to an INVITE without one; an UPDATE without an offer gets no SDP
            if req.method == "INVITE" or _has_sdp(req):
                body = c.local_sdp or b""
        resp = self.respond(stx, req, 200, "OK", hs, body)
        if req.method == "INVITE":
            # the UAS core keeps the 2xx alive until the ACK (RFC 3261 13.3.1.4)
            self.txl.send_2xx(resp, stx.dest if hasattr(stx, "dest") else transport.response_dest(req, None),
                              self.now)
        return 0

    def a_SendReINVITE(self, s, arg, ev):
        c = s.ctx
        if c.dialog is None:
            return ERR_FAILED
        if self._busy(s, "reinvite"):
            # RFC 3261 14.1: no new INVITE while one is in progress (resume pressed before the hold was answered):
            # it goes out when that one ends, with the offer for the state we are in then (see response_event)
            c.extra["reinvite_next"] = True
            return 0
        c.local_sdp = self.make_offer(s)
        req, dest = self.dialog_request(s, "INVITE", c.local_sdp, "application/sdp",
                                        [("Allow", ", ".join(self.allow()))])
        self.send_request(s, req, dest, "reinvite")
        c.reinvite = req
        return 0

    def a_SendREFER(self, s, arg, ev):
        c = s.ctx
        target = (ev or {}).get("target")
        if c.dialog is None or not target:
            self.emit("err %s BlindTransfer needs target=<uri>" % s.sid)
            return ERR_FAILED
        try:
            uri = self.target_uri(self.account(s), target)
        except ValueError:
            return ERR_FAILED
        req, dest = self.dialog_request(s, "REFER", extra=[("Refer-To", "<%s>" % uri),
                                                           ("Referred-By", "<%s>" % self.aor(self.account(s)))])
        self.send_request(s, req, dest, "refer")
        c.refer_target = uri
        return 0

    def a_SendUPDATE(self, s, arg, ev):
        if s.ctx.dialog is None:
            return ERR_FAILED
        req, dest = self.dialog_request(s, "UPDATE")    # no body: a session refresh (RFC 3311 5.1)
        self.send_request(s, req, dest, "update")
        return 0

    def a_SendINFO(self, s, arg, ev):
        from uphone.media import dtmf
        digit = (ev or {}).get("digit") or (ev or {}).get("digits", "")[:1]
        if s.ctx.dialog is None or not digit:
            return ERR_FAILED
        req, dest = self.dialog_request(s, "INFO", dtmf.info_body(digit), "application/dtmf-relay")
        self.send_request(s, req, dest, "info")
        return 0

    def a_StartGlareTimer(self, s, arg, ev):
        # RFC 3261 14.1: the Call-ID owner waits 2.1-4 s, the other side 0-2 s
        from uphone.phone import rand_ms
        ms = rand_ms(2100, 4000) if s.role != ROLE_UAS else rand_ms(0, 2000)
        self.start_timer(s, ms, T.E_GlareRetry)
        return 0

    def a_NotifyUser(self, s, arg, ev):
        others = [x for x in self.calls() if x is not s and x.state not in _ACTIVE]
        if others and others[0].ctx.media is not None:
            self.start_call_waiting_tone(others[0])
        return 0

    def a_StartDialogCleanup(self, s, arg, ev):
        # timers of this call (ring timeout, auto-answer, glare) end with the dialog
        self.timers = [t for t in self.timers if t[1] is not s]
        s.ctx.cancel_pending = s.ctx.cancel_pending and s.state != T.S_Terminating
        return 0


def _sipfrag_status(body):
    # "SIP/2.0 200 OK" -> 200 (RFC 3515 2.4.5)
    try:
        line = body.split(b"\n", 1)[0].decode()
        return int(line.split()[1])
    except (ValueError, IndexError):
        return 0
