# The bridge kind: the phone joining two of its calls through itself (the seed's B2BUA, as a handset has one). It is
# made when the far end refuses an attended transfer's REFER (405/501/403), or when the user joins two calls
# (InitiateBridge). The inbound leg is the older call, the outbound leg the newer. Media is relayed packet by packet
# as it arrives (no jitter buffer or decoding here: the far ends have their own), each leg's RTP sent on with the
# other leg's SSRC, sequence and clock, through a G.711 table where one leg speaks PCMU and the other PCMA. One leg
# ending ends the other. Actions are the functions named after the table's, called as Action(ph, session, arg, ev).
from uphone import table as T
from uphone.compat import ticks_add
from uphone.engine import ERR_FAILED
from uphone.media import g711
from uphone.ua import attended, call, media

_OVER = (T.S_Terminating, T.S_Replaced, T.S_Terminated, T.S_Cancelled, T.S_Failed, T.S_Idle)
_JOINS = (T.S_Active, T.S_OnHold, T.S_Transferring)     # the states with an InitiateBridge row


def relay_of(ph, s):
    for x in ph.mixes:
        if not x.conf and s in x.legs:
            return x
    return None


def _relay(b):
    return b.ctx.extra["relay"]


def _other_leg(ph, s, ev):
    sid = ev.get("leg")
    if sid:
        return next((x for x in ph.calls() if x.sid == sid), None)
    n = attended.consultation(ph, s)
    if n is not None:
        return n
    live = [x for x in ph.calls() if x is not s and x.state not in _OVER]
    return live[0] if len(live) == 1 else None


# -- the legs' InitiateBridge rows ------------------------------------------------------------------------------------
def CreateBridge(ph, s, arg, ev):
    ev = ev or {}
    if s.state == T.S_ConferenceHost:
        # AddParticipant: the participant's leg (a call of ours, or a new one) that RedirectToMixer connects
        from uphone.ua import conference        # loaded: s hosts a conference
        return conference.participant(ph, s, ev)
    r = ev.get("bridge")
    if r is not None:
        s.ctx.mix = r                   # the second leg, asked by the first one's CreateBridge
        return 0
    o = _other_leg(ph, s, ev)
    if o is None or o is s or o.state not in _JOINS or o.ctx.mix is not None or s.ctx.mix is not None:
        ph.emit("err %s InitiateBridge: no other call to bridge (leg=<sid>)" % s.sid)
        return ERR_FAILED
    order = ph.sessions()
    inbound, outbound = (o, s) if order.index(o) < order.index(s) else (s, o)
    from uphone.ua.relay import Relay        # the media side, loaded with the first bridge (heap: ua/relay.py)
    b = ph.new_session(T.K_bridge)
    r = Relay(ph, b, inbound, outbound)
    b.ctx.extra["relay"] = r
    ph.mixes.append(r)
    s.ctx.mix = r
    for x in (s, o):                    # a bridged transfer is no longer a consultation
        x.ctx.extra.pop("consult", None)
        x.ctx.extra.pop("consult_of", None)
    ph.emit("bridge %s in=%s out=%s" % (b.sid, inbound.sid, outbound.sid))
    ph.post(o, T.E_InitiateBridge, {"bridge": r})
    return 0


# -- the bridge kind's actions -------------------------------------------------------------------------------------
def ConnectMediaStreams(ph, b, arg, ev):
    r = _relay(b)
    a, o = (x.ctx.neg for x in r.legs)
    if a is None or o is None:
        return ERR_FAILED
    if a.codec != o.codec and not (a.codec in ("PCMU", "PCMA") and o.codec in ("PCMU", "PCMA")):
        ph.post(b, T.E_BridgeFailed, {"why": "%s and %s cannot be relayed" % (a.codec, o.codec)})
        return ERR_FAILED
    r.on = True
    r.delta = [None, None]
    ph.emit("bridge %s connected %s %s <-> %s %s" % (b.sid, r.legs[0].sid, a.codec, r.legs[1].sid, o.codec))
    return 0


def StartBridgeMonitoring(ph, b, arg, ev):
    r = _relay(b)
    r.monitor = ph.cfg.get("media", {}).get("rtp_timeout_s", 30) * 500     # half the calls' own RTP timeout
    for i in range(2):
        m = r.legs[i].ctx.media
        r.seen[i] = m.rx_packets if m is not None else 0
        r.quiet[i] = ph.now
        r.flowed[i] = False
    r.mon_next = ticks_add(ph.now, 1000)
    return 0


def SetupTranscoder(ph, b, arg, ev):
    r = _relay(b)
    pair = tuple(x.ctx.neg.codec for x in r.legs)
    try:
        laws = [g711.codec_for(c) for c in pair]
    except ValueError:
        ph.emit("err %s no transcoder for %s to %s" % (b.sid, pair[0], pair[1]))
        return ERR_FAILED
    if pair != r.pair:
        r.xcode = False
        from uphone.media.mixer import Bridge as Transcoder
        r.xc = Transcoder(laws[0], laws[1])     # two 256-byte tables, made once per pair of codecs
        r.xfn = (r.xc.a_to_b, r.xc.b_to_a)
        r.pair = pair
    return 0


def UpdateMediaPath(ph, b, arg, ev):
    r = _relay(b)
    a, o = (x.ctx.neg.codec for x in r.legs)
    r.xcode = a != o and r.pair == (a, o)      # from now on the relay maps each packet through the tables
    ph.emit("bridge %s path %s" % (b.sid, "%s>%s transcoded" % (a, o) if r.xcode else "copied"))
    return 0


def AttemptBridgeRecovery(ph, b, arg, ev):
    r = _relay(b)
    r.on = False
    r.monitor = 0
    r.recoveries += 1
    r.delta = [None, None]
    for leg in r.legs:
        if leg.ctx.media is not None:
            media.AttemptMediaRecovery(ph, leg, None, None)   # forget the RTP peer learnt: it may come back moved
    return 0


def NotifyEndpoints(ph, b, arg, ev):
    # a re-INVITE to each leg with our unchanged address and a new SDP version: each far end answers and sends its
    # media again; both answers bring BridgeConnected (progress below)
    sent = 0
    for leg in _relay(b).legs:
        if leg.state == T.S_Bridged and call.SendReINVITE(ph, leg, None, None) == 0:
            sent += 1
    return 0 if sent else ERR_FAILED


def CleanupBothLegs(ph, b, arg, ev):
    r = _relay(b)
    r.on = False
    r.monitor = 0
    for leg in r.legs:
        if leg.ctx.mix is r:
            leg.ctx.mix = None
            leg.ctx.next_frame = ph.now
    return 0


def SendErrorResponses(ph, b, arg, ev):
    why = (ev or {}).get("why") or "bridge failed"
    ph.emit("bridge %s failed: %s" % (b.sid, why))
    for leg in _relay(b).legs:
        if leg.state == T.S_Bridged:
            ph.post(leg, T.E_HangupCall, {"reason": why})     # BYE with Reason (RFC 3326)
    return 0


def _hand_bye(ph, leg, ev):
    ev = ev or {}
    if ev.get("stx") is None or leg.state != T.S_Bridged:
        return ERR_FAILED
    ph.post(leg, T.E_DialogBYE, ev)     # the leg's Bridged x DialogBYE row answers it 200
    return 0


def _bye(ph, leg):
    if leg.state == T.S_Bridged:
        ph.post(leg, T.E_HangupCall)
    return 0


def Send200OKToInbound(ph, b, arg, ev):
    return _hand_bye(ph, _relay(b).legs[0], ev)


def Send200OKToOutbound(ph, b, arg, ev):
    return _hand_bye(ph, _relay(b).legs[1], ev)


def SendBYEToInbound(ph, b, arg, ev):
    return _bye(ph, _relay(b).legs[0])


def SendBYEToOutbound(ph, b, arg, ev):
    return _bye(ph, _relay(b).legs[1])


# -- glue: the phone core calls these ------------------------------------------------------------------------------
def takes_bye(ph, s, args):
    """A BYE on call s: True when s is a leg of a bridge that is up, which then takes it (InboundBYE/OutboundBYE)."""
    r = relay_of(ph, s) if s.state == T.S_Bridged else None
    if r is None or r.s.state != T.S_BridgeActive:
        return False
    return ph.dispatch(r.s, T.E_InboundBYE if s is r.legs[0] else T.E_OutboundBYE, args) == 0


def _ready(ph, r):
    for leg in r.legs:
        n = leg.ctx.neg
        if leg.state != T.S_Bridged or leg.ctx.media is None or n is None or n.direction != "sendrecv" or \
                ph.busy(leg, "reinvite"):
            return False
    return True


def progress(ph, s):
    """After each transition of a call or a bridge: what the bridge does next."""
    if s.kind == T.K_bridge:
        r = _relay(s)
        r.posted = -1
        if s.is_final():
            for leg in r.legs:
                if leg.ctx.mix is r:
                    leg.ctx.mix = None
            if r in ph.mixes:
                ph.mixes.remove(r)
            ph.emit("end %s %s" % (s.sid, T.STATES[s.state]))
            ph.drop_session(s)
            return
    else:
        r = relay_of(ph, s)
        if r is None:
            return
    b = r.s
    if b not in ph.sessions():
        return
    gone = [x for x in r.legs if x not in ph.sessions() or x.state in _OVER]
    if b.state == T.S_BridgeInitiating:
        if gone:
            r.post(ph, T.E_BridgeFailed, {"why": "%s ended" % gone[0].sid})
        elif _ready(ph, r):
            r.post(ph, T.E_BridgeConnected)
    elif b.state == T.S_BridgeActive:
        if gone or any(x.state != T.S_Bridged for x in r.legs):
            r.post(ph, T.E_HangupCall)
        else:
            a, o = r.legs[0].ctx.neg.codec, r.legs[1].ctx.neg.codec
            if a != o and (not r.xcode or r.pair != (a, o)):
                r.post(ph, T.E_TranscodingRequired)
    elif b.state == T.S_Terminating and all(x in gone or x.state != T.S_Bridged for x in r.legs):
        r.post(ph, T.E_InternalCleanupComplete)        # every leg ended or left the bridge
