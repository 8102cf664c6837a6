# A 3-way conference hosted by a phone (ua/conference.py, ua/mixing.py, media/mixer.py), each phone its own process
# on CPython and on the frozen MicroPython runtime over real UDP sockets. Alice (1000 Hz) calls bob (440 Hz), makes
# the call a conference and adds carol (700 Hz): each party hears the other two. Carol is muted in the conference
# (bob stops hearing her), alice holds the conference (bob and carol go on hearing each other, not alice), carol
# leaves it (back to a plain call with alice), and a held call of alice's joins it.
import os
import time
import wave

from tests.multileg import hears, heard, mic
from tests.proc import phones, run_code  # noqa: F401  (phones is a fixture)

AUTO = {"auto_answer": True, "auto_answer_delay_ms": 0}
SEC = 8000 * 2


def _mix_line(p):
    return next((l for l in p.st()["lines"] if l.startswith("mix conf ")), "")


def _windows(pcm, want, absent, step_s=0.5, len_s=1.0):
    """Whether some len_s window of pcm has every tone of want and none of absent (-> (bool, best levels))."""
    best = None
    i = 0
    while i + int(len_s * SEC) <= len(pcm):
        ok, lv = hears(pcm[i:i + int(len_s * SEC)], want, absent)
        if ok:
            return True, lv
        best = best or lv
        i += int(step_s * SEC)
    return False, best


def _garbage(p, runtime):
    """Bytes phone p allocated in 2 s (MicroPython; 0 on CPython)."""
    if runtime != "micropython":
        return 0
    assert p.cmd("mem hold")[0].startswith("ok mem")
    time.sleep(2.0)
    ans = p.cmd("mem release")[0]
    return int(ans.split("garbage=")[1].split()[0])


def test_three_way_conference_hosted_by_the_phone(phones):
    alice = phones.add("alice", audio=mic(1000))
    bob = phones.add("bob", audio=mic(440), features=AUTO)
    carol = phones.add("carol", audio=mic(700), features=AUTO)
    assert alice.ev("MakeCall", target=bob.uri).startswith("ok c1")
    assert alice.wait(lambda: alice.state() == "Active" and bob.state() == "Active", 10), (alice.tail(), bob.tail())
    base = _garbage(alice, phones.runtime)
    # create: the call with bob becomes the conference's host leg
    assert alice.ev("CreateConference", sid="c1").startswith("ok c1 ConferenceHost"), alice.tail()
    # add: a new call to carol joins once she answers
    assert alice.ev("AddParticipant", sid="c1", target=carol.uri).startswith("ok c1 ConferenceHost"), alice.tail()
    assert alice.wait(lambda: alice.st()["calls"] == {"c1": "ConferenceHost", "c2": "InConference"}, 10), \
        alice.tail()
    assert alice.saw("tr c2 Active JoinConference InConference ConnectToMixer")
    assert "legs=c1,c2" in _mix_line(alice), _mix_line(alice)
    # record the conference: every party summed, in the phone's folder
    assert alice.ev("StartRecording", sid="c1").startswith("ok c1 ConferenceHost"), alice.tail()
    assert "rec=1" in _mix_line(alice)
    time.sleep(3.0)
    if phones.runtime == "micropython":
        # the mixing allocates nothing per frame: what the host leaves for the collector in 2 s of a conference
        # (100 frames of three parties) is the console's answers and RTCP, as in its plain call with bob before
        # (two calls now: twice the RTCP), under the bench's 2 KB/s; the mixing itself allocates nothing per frame
        # (test_mixing_allocates_nothing_per_frame)
        garbage = _garbage(alice, phones.runtime)
        assert garbage < 2 * 2048, (garbage, base)
    # mute carol in the conference: bob stops hearing her, she still hears both
    assert alice.ev("MuteInConference", sid="c2").startswith("ok c2 InConference"), alice.tail()
    assert "muted=c2" in _mix_line(alice)
    time.sleep(2.5)
    assert alice.ev("UnmuteCall", sid="c2").startswith("ok c2 InConference"), alice.tail()
    # hold the conference: alice leaves the mix, bob and carol go on hearing each other
    assert alice.ev("HoldCall", sid="c1").startswith("ok c1 ConferenceOnHold"), alice.tail()
    assert "hold=1" in _mix_line(alice)
    time.sleep(2.5)
    assert alice.ev("ResumeCall", sid="c1").startswith("ok c1 ConferenceHost"), alice.tail()
    time.sleep(1.0)
    # carol leaves: her call with alice is a plain call again
    assert alice.ev("LeaveConference", sid="c2").startswith("ok c2 Active"), alice.tail()
    assert alice.wait(lambda: "legs=c1 " in _mix_line(alice), 5), _mix_line(alice)
    time.sleep(1.0)
    # the host hangs up: the mixer goes, carol's call goes on
    assert alice.ev("HangupCall", sid="c1").startswith("ok c1 Terminating"), alice.tail()
    assert alice.wait(lambda: alice.st()["calls"] == {"c2": "Active"} and bob.state() == "-", 10), alice.tail()
    assert alice.saw("tr c1 ConferenceHost HangupCall Terminating DestroyMixer,SendBYE")
    assert not _mix_line(alice)
    alice.ev("HangupCall", sid="c2")
    assert alice.wait(lambda: alice.state() == "-" and carol.state() == "-", 10), (alice.tail(), carol.tail())
    phones.close()
    a, b, c = heard(alice), heard(bob), heard(carol)
    # the recording (closed with the mixer) holds all three parties
    with wave.open(os.path.join(alice.dir, "rec-conf-c1.wav")) as w:
        rec = w.readframes(w.getnframes())
    ok, lv = _windows(rec, [1000, 440, 700], [])
    assert ok, ("recording", lv)
    # all three in the conference: each hears the other two
    for who, pcm, want, me in (("alice", a, [440, 700], 1000), ("bob", b, [1000, 700], 440),
                               ("carol", c, [1000, 440], 700)):
        ok, lv = _windows(pcm, want, [me])
        assert ok, (who, "both others", lv)
    # carol muted: bob hears alice alone for a while; carol went on hearing both
    ok, lv = _windows(b, [1000], [700])
    assert ok, ("bob while carol muted", lv)
    # the conference held: bob and carol hear each other and not alice
    ok, lv = _windows(b, [700], [1000])
    assert ok, ("bob while held", lv)
    ok, lv = _windows(c, [440], [1000])
    assert ok, ("carol while held", lv)


def test_a_held_call_joins_the_conference(phones):
    # alice talks to bob, puts him on hold by calling carol, makes the call with carol a conference and joins the
    # held call with bob into it (AddParticipant target=<sid>: resumed, then JoinConference)
    alice = phones.add("alice", audio=mic(1000))
    bob = phones.add("bob", audio=mic(440), features=AUTO)
    carol = phones.add("carol", audio=mic(700), features=AUTO)
    alice.ev("MakeCall", target=bob.uri)
    assert alice.wait(lambda: alice.state() == "Active", 10), alice.tail()
    alice.ev("MakeCall", target=carol.uri)
    assert alice.wait(lambda: alice.st()["calls"] == {"c1": "OnHold", "c2": "Active"}, 10), alice.tail()
    assert alice.ev("CreateConference", sid="c2").startswith("ok c2 ConferenceHost"), alice.tail()
    assert alice.ev("AddParticipant", sid="c2", target="c1").startswith("ok c2 ConferenceHost"), alice.tail()
    assert alice.wait(lambda: alice.st()["calls"] == {"c1": "InConference", "c2": "ConferenceHost"}, 10), \
        alice.tail()
    assert alice.saw("tr c1 Active JoinConference InConference ConnectToMixer")
    assert bob.wait(lambda: bob.st()["leg"]["c1"]["dir"] == "sendrecv", 5), bob.tail()
    time.sleep(3.0)
    alice.ev("HangupCall", sid="c1")
    assert alice.wait(lambda: alice.st()["calls"] == {"c2": "ConferenceHost"} and bob.state() == "-", 10), \
        alice.tail()
    assert alice.saw("tr c1 InConference HangupCall Terminating DisconnectFromMixer,SendBYE")
    # alice holds what is left of the conference and carol hangs up
    assert alice.ev("HoldCall", sid="c2").startswith("ok c2 ConferenceOnHold")
    carol.ev("HangupCall")
    assert alice.wait_line("tr c2 ConferenceOnHold DialogBYE Terminating DestroyMixer,SendSIPResponse(200,OK)", 10), \
        alice.tail()
    assert alice.wait(lambda: alice.state() == "-" and carol.state() == "-", 10), alice.tail()
    assert not _mix_line(alice)
    phones.close()
    ok, lv = _windows(heard(bob), [1000, 700], [440])
    assert ok, ("bob", lv)
    ok, lv = _windows(heard(carol), [1000, 440], [700])
    assert ok, ("carol", lv)


_BENCH = """
import gc
from uphone.media.session import MediaSession
from uphone.media import gain, mixer
from uphone.ua import audio
from uphone.ua.mixing import Conference


class RT:
    def sendto(self, s, p, a):
        pass


class Obj:
    pass


ph = Obj()
ph.cfg = {"audio": {"rate": 8000}}
ph.audio_src = audio.Silence()
ph.audio_sink = audio.Silence()
ph.rt = RT()
ph.voice = False
ph.mic_gain = gain.UNITY
ph.frame_bufs = None
ph._line_mem = [bytearray(10), bytearray(10)]
ph.queue = []
ph.now = 0
legs = []
for i in range(2):
    s = Obj()
    c = s.ctx = Obj()
    s.sid = "c%d" % (i + 1)
    m = c.media = MediaSession("PCMU", 0)
    m.remote = ("127.0.0.1", 4000 + i)
    c.flowing = True
    c.rtp_sock = c.rtcp_sock = None
    c.rtcp_next = 10 ** 6
    c.tone = None
    c.local_dir = "sendrecv"
    legs.append(s)
conf = Conference(ph, legs[0])
conf.legs.append(legs[1])
ph.mixes = [conf]
ph.sessions = lambda: legs
now = 0
for s in legs:
    s.ctx.mix = conf
    s.ctx.next_frame = now
conf.next_frame = now
for i in range(10):
    audio.tick(ph, now)
    now += 20
conf.muted.append(legs[1])
audio.tick(ph, now)
conf.muted.remove(legs[1])
gc.collect()
gc.disable()
x = gc.mem_alloc()
for i in range(100):
    audio.tick(ph, now)     # the conference's step: three parties decoded, mixed, encoded, sent
    now += 20
a = gc.mem_alloc() - x
conf.muted.append(legs[1])
x = gc.mem_alloc()
for i in range(100):
    audio.tick(ph, now)
    now += 20
b = gc.mem_alloc() - x
print("impl", mixer.IMPL, "alloc", a, b)
"""


def test_mixing_allocates_nothing_per_frame():
    # 100 frames of a three-party conference (two legs and the handset) stepped by the phone's frame pump on the
    # frozen MicroPython runtime, with and without a muted participant: not a byte allocated, and the inner loops
    # are viper there
    rc, out, err = run_code("micropython", _BENCH)
    assert rc == 0, (out, err)
    assert out.split() == ["impl", "viper", "alloc", "0", "0"], (out, err)


def test_conference_with_a_baresip_participant(phones, tmp_path):
    # alice hosts a conference with bob (a phone) and baresip (libre's SIP and RTP, PCMA only: alice's legs speak
    # different codecs, mixed as PCM): baresip hears alice and bob, bob hears alice and baresip
    from tests import peers
    from tests.proc import free_port
    port = free_port()
    bs = peers.Baresip(tmp_path / "bs", "<sip:carol@127.0.0.1:%d>;regint=0;answermode=auto;audio_codecs=PCMA"
                       % port, port=port, tone_hz=700).start()
    try:
        alice = phones.add("alice", audio=mic(1000))
        bob = phones.add("bob", audio=mic(440), features=AUTO)
        alice.ev("MakeCall", target=bob.uri)
        assert alice.wait(lambda: alice.state() == "Active", 10), alice.tail()
        assert alice.ev("CreateConference").startswith("ok c1 ConferenceHost"), alice.tail()
        assert alice.ev("AddParticipant", target="sip:carol@127.0.0.1:%d" % port).startswith("ok c1"), alice.tail()
        assert alice.wait(lambda: alice.st()["calls"] == {"c1": "ConferenceHost", "c2": "InConference"}, 10), \
            alice.tail()
        assert alice.st()["leg"]["c2"]["codec"] == "PCMA" and alice.st()["leg"]["c1"]["codec"] == "PCMU"
        time.sleep(4.0)
        bs.command("hangup")
        assert alice.wait(lambda: alice.st()["calls"] == {"c1": "ConferenceHost"}, 10), alice.tail()
        assert alice.saw("tr c2 InConference DialogBYE Terminating DisconnectFromMixer,SendSIPResponse(200,OK)")
        alice.ev("HangupCall")
        assert alice.wait(lambda: alice.state() == "-" and bob.state() == "-", 10), alice.tail()
        phones.close()
    finally:
        phones.close(check=False)
        bs.stop()
    ok, lv = _windows(heard(bob), [1000, 700], [440])
    assert ok, ("bob", lv)
    decoded = [w for w in bs.dumps_wavs() if "dec" in w.rsplit("/", 1)[-1]]
    assert decoded, bs.dumps_wavs()
    from tests.test_interop_media import read_wav
    pcm, _rate = read_wav(decoded[-1])
    ok, lv = _windows(pcm, [1000, 440], [700])
    assert ok, ("baresip", lv)


def test_host_leg_hung_up_by_the_far_end_and_a_held_conference_hung_up(phones):
    # DTMF to a participant; bob (the host leg's far end) hangs up: the mixer goes and carol's call goes on as a
    # plain call; alice makes that call a conference of its own, holds it and hangs it up
    alice = phones.add("alice", audio=mic(1000))
    bob = phones.add("bob", audio=mic(440), features=AUTO)
    carol = phones.add("carol", audio=mic(700), features=AUTO)
    alice.ev("MakeCall", target=bob.uri)
    assert alice.wait(lambda: alice.state() == "Active", 10), alice.tail()
    assert alice.ev("CreateConference").startswith("ok c1 ConferenceHost")
    assert alice.ev("AddParticipant", target=carol.uri).startswith("ok c1 ConferenceHost")
    assert alice.wait(lambda: alice.st()["calls"] == {"c1": "ConferenceHost", "c2": "InConference"}, 10), \
        alice.tail()
    assert alice.ev("SendDTMF", sid="c2", digits="42").startswith("ok c2 InConference")
    assert carol.wait(lambda: carol.st()["media"]["c1"]["dtmf"] == "42", 5), carol.tail()
    bob.ev("HangupCall")
    assert alice.wait_line("tr c1 ConferenceHost DialogBYE Terminating DestroyMixer,SendSIPResponse(200,OK)", 10), \
        alice.tail()
    assert alice.wait(lambda: alice.st()["calls"] == {"c2": "Active"}, 10), alice.tail()
    assert alice.saw("tr c2 InConference LeaveConference Active DisconnectFromMixer,RestoreDirectMedia")
    assert not _mix_line(alice)
    assert alice.ev("CreateConference", sid="c2").startswith("ok c2 ConferenceHost")
    assert alice.ev("HoldCall", sid="c2").startswith("ok c2 ConferenceOnHold")
    assert alice.ev("HangupCall", sid="c2").startswith("ok c2 Terminating")
    assert alice.wait(lambda: alice.state() == "-" and carol.state() == "-", 10), (alice.tail(), carol.tail())
    assert not _mix_line(alice)
    phones.close()
