# Call signalling benchmark: sipp INVITE -> 200 OK latency against the auto-answering simulator on loopback
# (p50/p99 from sipp's response-time trace). The phone's heap in a call comes from bench/phone_mp.py (real runtime).
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from host_tools import tablec

FW = os.path.join(tablec.ROOT, "firmware")
CALLS = 200



def setup_latency():
    """-> sorted list of INVITE -> 200 OK times in ms, or raise when sipp is missing or fails."""
    if FW not in sys.path:
        sys.path.insert(0, FW)
    sys.path.insert(0, tablec.ROOT)
    from tests.proc import Phones, free_port
    from tests import peers
    exe = shutil.which("sipp")
    if exe is None:
        raise RuntimeError("sipp is not installed (apt-get install sip-tester)")
    tmp = tempfile.mkdtemp()
    scen = os.path.join(tmp, "rtd.xml")
    with open(scen, "w") as f:
        f.write(peers.uac_scenario(name="invite-to-200 latency", rtd=True))
    # the simulator: the firmware's runner on CPython in its own process (tests/proc.py), on a free port
    phones = Phones("cpython", os.path.join(tmp, "phones"))
    bob = phones.add("bob", features={"auto_answer": True, "auto_answer_delay_ms": 0})
    proc = subprocess.Popen([exe, "-sf", scen, "127.0.0.1:%d" % bob.port, "-i", "127.0.0.1", "-mi", "127.0.0.1",
                             "-p", str(free_port()), "-cp", str(free_port()), "-m", str(CALLS), "-r", "20",
                             "-nostdin", "-trace_rtt", "-rtt_freq", "1", "-timeout", "60s", "-timeout_error"],
                            cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.communicate(timeout=70)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    finally:
        phones.close(check=False)
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
