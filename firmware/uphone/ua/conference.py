# A conference hosted by the phone: the handset and the calls in it mixed so that each party hears all the others
# (a 3-way call on the default two lines). The call it was created from is the host (ConferenceHost); the others
# join it (InConference). Every 20 ms the conference decodes each leg's frame (its MediaSession's own buffer, in the
# line reserved at boot), reads the microphone, mixes them in place (media/mixer.py: viper on the phone) and encodes
# each leg's share back: no buffer of its own and no allocation per frame. Actions are the functions named after
# the table's, called as Action(ph, session, arg, evargs); the host's MuteToMixer is the handset's share (holding
# the conference), a participant's is that participant's voice.
from uphone import table as T
from uphone.engine import ERR_FAILED, ROLE_UAC
from uphone.ua import media, request

_OVER = (T.S_Terminating, T.S_Replaced, T.S_Terminated, T.S_Cancelled, T.S_Failed, T.S_Idle)


def hosted_by(ph, s):
    for x in ph.mixes:
        if x.conf and x.host is s:
            return x
    return None


def _of(s):
    x = s.ctx.mix
    return x if x.conf else None


def participant(ph, host, ev):
    """AddParticipant's CreateBridge: the leg to add, kept for RedirectToMixer(target): one of our calls named by
    target=<sid> (held or not), else a new call to target=<number or URI> (it joins once answered)."""
    t = ev.get("target") or ev.get("leg") or ""
    leg = next((x for x in ph.calls() if x.sid == t), None)
    if leg is not None:
        if leg is host or leg.state not in (T.S_Active, T.S_OnHold) or leg.ctx.mix is not None:
            ph.emit("err %s %s cannot join the conference from %s" % (host.sid, leg.sid, T.STATES[leg.state]))
            return ERR_FAILED
    else:
        try:
            uri = request.target_uri(ph, request.account(ph, host), t)
        except ValueError:
            ph.emit("err %s AddParticipant needs target=<sid, number or uri>" % host.sid)
            return ERR_FAILED
        if not media.line_free(ph) or not ph.room():
            ph.emit("err %s no free line for another participant" % host.sid)
            return ERR_FAILED
        leg = ph.new_session(T.K_call, ROLE_UAC, host.ctx.account)
        ph.post(leg, T.E_MakeCall, {"target": uri})
    host.ctx.extra["adding"] = leg
    return 0


# -- actions -------------------------------------------------------------------------------------------------------
def CreateAudioMixer(ph, s, arg, ev):
    if any(x.conf for x in ph.mixes):
        ph.emit("err %s one conference at a time" % s.sid)
        return ERR_FAILED
    if s.ctx.media is None:
        return ERR_FAILED
    from uphone.ua.mixing import Conference     # the mixing, loaded with the first conference (ua/mixing.py)
    ph.mixes.append(Conference(ph, s))
    ph.emit("conf %s created" % s.sid)
    return 0


def RedirectToMixer(ph, s, arg, ev):
    conf = hosted_by(ph, s)
    if conf is None:
        return ERR_FAILED
    if arg[0] == "self":
        s.ctx.mix = conf                # from now on the conference pumps this call's media, with the handset
        conf.next_frame = ph.now
        return 0
    leg = s.ctx.extra.pop("adding", None)
    if leg is None:
        return ERR_FAILED
    leg.ctx.extra["join"] = conf
    ph.emit("conf %s adding %s" % (s.sid, leg.sid))
    if leg.state == T.S_OnHold:
        ph.post(leg, T.E_ResumeCall)    # resumed first; once Active it joins (progress)
    elif leg.state != T.S_Idle:         # a new call (still Idle: its MakeCall is queued) joins once answered
        progress(ph, leg)
    return 0


def ConnectToMixer(ph, s, arg, ev):
    conf = s.ctx.extra.pop("join", None)
    s.ctx.extra.pop("join_posted", None)
    if conf is None or conf not in ph.mixes or s.ctx.media is None:
        return ERR_FAILED
    hm = conf.host.ctx.media
    if hm is None or hm.rate != s.ctx.media.rate or len(conf.legs) >= len(conf.bufs) - 1:
        ph.emit("err %s cannot be mixed with %s (audio rate)" % (s.sid, conf.host.sid))
        return ERR_FAILED
    conf.legs.append(s)
    s.ctx.mix = conf
    ph.emit("conf %s joined %s" % (conf.host.sid, s.sid))
    return 0


def DisconnectFromMixer(ph, s, arg, ev):
    conf = _of(s)
    if conf is not None:
        if s in conf.legs:
            conf.legs.remove(s)
        if s in conf.muted:
            conf.muted.remove(s)
        s.ctx.mix = None
        s.ctx.next_frame = ph.now
    return 0


def RestoreDirectMedia(ph, s, arg, ev):
    # the call's media goes back to the per-call frame pump (ua/audio.py), out of any conference or bridge: it is
    # heard on the handset when no conference holds it (one conversation at a time)
    c = s.ctx
    if c.media is None:
        return ERR_FAILED
    c.mix = None
    c.next_frame = ph.now
    if c.neg is not None:
        c.media.set_direction(c.neg.direction)
    return 0


def DestroyMixer(ph, s, arg, ev):
    conf = hosted_by(ph, s)
    if conf is None:
        return ERR_FAILED
    conf.close()
    for leg in conf.legs:
        if leg is not s and leg.state == T.S_InConference:
            ph.post(leg, T.E_LeaveConference)      # the others go on as ordinary calls
    s.ctx.mix = None
    ph.mixes.remove(conf)
    ph.emit("conf %s ended" % s.sid)
    return 0


def MuteToMixer(ph, s, arg, ev):
    conf = _of(s)
    if conf is None:
        return ERR_FAILED
    if s is conf.host:
        conf.handset = False            # held: the handset neither speaks nor hears; the others go on
    elif s not in conf.muted:
        conf.muted.append(s)
    return 0


def UnmuteToMixer(ph, s, arg, ev):
    conf = _of(s)
    if conf is None:
        return ERR_FAILED
    if s is conf.host:
        conf.handset = True
    elif s in conf.muted:
        conf.muted.remove(s)
    return 0


def StartRecordingMixer(ph, s, arg, ev):
    conf = hosted_by(ph, s)
    m = s.ctx.media
    if conf is None or m is None or conf.wav is not None:
        return ERR_FAILED
    path = (ev or {}).get("file") or ("%s/rec-conf-%s.wav" % (ph.base_dir or ".", s.sid))
    try:
        f = open(path, "wb")
    except OSError as e:
        ph.emit("err %s cannot record to %s: %s" % (s.sid, path, e))
        return ERR_FAILED
    from uphone.media.wav import WavWriter
    conf.rec_file = f
    conf.wav = WavWriter(f, m.rate)
    conf.rec = bytearray(m.rate // 25)      # one frame: every party summed, made once here
    ph.emit("rec %s %s" % (s.sid, path))
    return 0


def progress(ph, s):
    """After each transition of a call: a call waiting to join a conference joins once it is answered (or
    resumed); one that ended before is forgotten."""
    if s.state in _OVER:
        for m in ph.mixes:              # a leg that ended by a row without DisconnectFromMixer leaves the mix too
            if m.conf and s in m.legs and s is not m.host:
                m.legs.remove(s)
    x = s.ctx.extra
    conf = x.get("join")
    if conf is None:
        return
    if conf not in ph.mixes or s.state in _OVER:
        x.pop("join", None)
        x.pop("join_posted", None)
        ph.emit("conf: %s did not join" % s.sid)
    elif s.state == T.S_Active and not x.get("join_posted"):
        x["join_posted"] = True
        ph.post(s, T.E_JoinConference)
