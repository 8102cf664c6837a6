# The phone's I2S audio device (firmware/uphone/hal/esp32.py I2SAudio) on the virtual board's simulated machine.I2S
# (real-time DMA, callbacks through micropython.schedule), with faults switched on: a stalled capture gives silence,
# never the last frame again; playback goes on after lost callbacks; both recover from a stalled DMA; late callbacks
# do no harm. The script runs on the board (the frozen firmware on MicroPython) and drives the device as the phone's
# media pump does, one frame every 20 ms; the microphone hears a ramp (sample k = k & 0x7FFF), so every captured
# frame is unique and a replayed one shows.
import json

import pytest

from tests.vboard import VBoard

SCRIPT = r"""
import json, machine, struct, time
from uphone.hal.esp32 import I2SAudio
machine.I2S.mic("ramp")
pins = {"sck": 26, "ws": 25, "sd_out": 22, "sd_in": 32, "rx_sck": 14, "rx_ws": 15}
a = I2SAudio(machine, pins, 8000)
frame = bytearray(320)
tone = bytearray(struct.pack("<h", 3000) * 160)
txs = [a.tx]
prev = [None]

def played():
    if a.tx not in txs:
        txs.append(a.tx)
    return sum(t.stats["frames"] for t in txs)

def phase(name, ms, before=None):
    st = {"name": name, "ramp": 0, "silent": 0, "replayed": 0, "broken": 0}
    p0 = played()
    half = None
    t = time.ticks_ms()
    nxt = t
    while time.ticks_diff(time.ticks_ms(), t) < ms:
        nxt = time.ticks_add(nxt, 20)
        while time.ticks_diff(nxt, time.ticks_ms()) > 0:
            time.sleep_ms(1)
        a.readinto(frame)
        s0 = struct.unpack_from("<h", frame, 0)[0]
        if frame == bytes(320):
            st["silent"] += 1
        elif all(struct.unpack_from("<h", frame, 2 * i)[0] == (s0 + i) & 0x7FFF for i in range(160)):
            st["ramp"] += 1
            if prev[0] == s0:
                st["replayed"] += 1
            prev[0] = s0
        else:
            st["broken"] += 1
        a.write(tone)
        a.poll(time.ticks_ms())
        if half is None and time.ticks_diff(time.ticks_ms(), t) >= ms // 2:
            half = played()
    st["played"] = played() - p0
    st["played_2nd_half"] = played() - half
    for k in ("silent", "dropped", "tx_stalled", "rx_stalled", "reopened"):
        st["dev_" + k] = getattr(a, k)
    print("PHASE", json.dumps(st))

phase("normal", 1000)
a.rx.fault(stall=True)
phase("rx stalled briefly", 300)
a.rx.fault(stall=False)
phase("rx resumed", 1000)
a.rx.fault(stall=True)
phase("rx stalled", 1500)
phase("rx after reopen", 1000)
a.tx.fault(lose=3)
phase("tx callbacks lost", 1500)
a.tx.fault(stall=True)
phase("tx stalled", 1500)
phase("tx after", 1000)
a.rx.fault(late=40)
a.tx.fault(late=40)
phase("late callbacks", 1500)
a.deinit()
"""


@pytest.fixture
def vb(tmp_path):
    b = VBoard(tmp_path / "board")
    yield b
    b.close()


def test_i2s_audio_faults_on_the_board(vb, tmp_path):
    script = tmp_path / "audio.py"
    script.write_text(SCRIPT)
    r = vb.mpremote("run", str(script), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    ph = {}
    for ln in r.stdout.splitlines():
        if ln.startswith("PHASE "):
            d = json.loads(ln[6:])
            ph[d["name"]] = d
    assert len(ph) == 9, r.stdout
    for d in ph.values():
        assert d["replayed"] == 0 and d["broken"] == 0, d      # never the same frame twice, never torn
    assert ph["normal"]["ramp"] > 30 and ph["normal"]["played"] > 0, ph["normal"]
    # a short stall: the ring runs dry, then silence; the DMA comes back and the pending read completes
    assert ph["rx stalled briefly"]["silent"] > 0
    assert ph["rx resumed"]["ramp"] > 30
    # a long stall: silence, the read is written off and the channel set up again; capture comes back
    assert ph["rx stalled"]["silent"] > 30 and ph["rx stalled"]["dev_rx_stalled"] > ph["rx resumed"]["dev_rx_stalled"]
    assert ph["rx after reopen"]["dev_reopened"] >= 1 and ph["rx after reopen"]["ramp"] > 30
    # lost playback callbacks: written off after the stall time, and the frames keep playing
    assert ph["tx callbacks lost"]["dev_tx_stalled"] >= 3 and ph["tx callbacks lost"]["played_2nd_half"] > 0
    # a stalled playback DMA: written off, the channel set up again, playback goes on
    assert ph["tx stalled"]["dev_reopened"] > ph["tx callbacks lost"]["dev_reopened"]
    assert ph["tx after"]["played"] > 0 and ph["tx after"]["played_2nd_half"] > 0
    # every callback 40 ms late: one read in flight at a time, so capture slows down, but it never stalls,
    # replays or tears a frame, and playback goes on
    late = ph["late callbacks"]
    assert late["ramp"] > 15 and late["played_2nd_half"] > 0 and late["dev_reopened"] == ph["tx after"]["dev_reopened"]
