# Real SIP peers on 127.0.0.1 for interop tests: sipp, Kamailio (registrar + proxy with digest auth), baresip.
# Each helper starts a bounded process on free loopback ports (tests/proc.py: two test runs on one machine must not
# collide) and stops it by PID; a missing binary skips locally and fails in CI (UPHONE_REQUIRE_PEERS=1).
import glob
import os
import signal
import socket
import struct
import subprocess
import time
import wave

from tests.conftest import need_binary
from tests.proc import free_port, free_range


def _installed_dir(patterns, package, tail):
    """A folder the package installed, found on this machine (x86_64, aarch64 ... lay libraries out differently):
    the usual places first, then the package's own file list."""
    for pat in patterns:
        for d in sorted(glob.glob(pat)):
            if os.path.isdir(d):
                return d
    try:
        files = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        files = ""
    for line in files.splitlines():
        if line.rstrip("/").endswith(tail) and os.path.isdir(line):
            return line
    raise RuntimeError("cannot find %s's %s folder (looked at %s and dpkg -L %s)" % (package, tail, patterns,
                                                                                    package))


def kamailio_modules():
    return _installed_dir(("/usr/lib/*/kamailio/modules", "/usr/lib/kamailio/modules", "/usr/lib64/kamailio/modules",
                           "/usr/local/lib*/kamailio/modules"), "kamailio", "kamailio/modules") + "/"


def baresip_modules():
    return _installed_dir(("/usr/lib/baresip/modules", "/usr/lib/*/baresip/modules", "/usr/local/lib/baresip/modules"),
                          "baresip-core", "baresip/modules")


def finish(proc, timeout=15):
    """Wait for a peer process to end (bounded), killing it when it does not: -> (exit code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        out, err = proc.communicate()
    return proc.returncode, out, err


def stop(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def write_tone_wav(path, freq, seconds=5.0, rate=8000, amp=8000):
    import math
    n = int(rate * seconds)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(amp * math.sin(2 * math.pi * freq * i / rate)))
                               for i in range(n)))


# ---- sipp -------------------------------------------------------------------------------------------------

def sipp_args(args):
    """sipp's own sockets on free ports: its control socket (-cp, 8888 by default) and, unless given, the local SIP
    port (-p) and the media ports (-mp: RTP, RTCP and the +2/+3 pair sipp binds for echo and streams)."""
    out = list(args) + ["-nostdin", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-cp", str(free_port())]
    if "-p" not in args:
        out += ["-p", str(free_port())]
    if "-mp" not in args:
        out += ["-mp", str(free_range(8))]
    return out


# sipp scenarios are put together from these pieces ([next_url] etc. are sipp's own keywords)
SDP_OFFER = """v=0
o=user1 53655765 %(version)d IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio %(port)s RTP/AVP %(pts)s
a=rtpmap:0 PCMU/8000
%(extra)s"""


def sdp(port="[media_port]", te=True, direction=None, version=2353687637):
    extra = "a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\na=ptime:20\n" if te else ""
    if direction:
        extra += "a=%s\n" % direction
    return SDP_OFFER % {"version": version, "port": port, "pts": "0 101" if te else "0", "extra": extra}


def sipp_send(method, cseq, body=None, first=False, attrs="", extra=(), ctype="application/sdp", user="bob"):
    """A <send> of a request from the sipp caller: the dialog's first INVITE (first=True, to the phone's user) or one
    inside it; extra: more header lines ("Require: 100rel")."""
    uri, to = ("sip:%s@[remote_ip]:[remote_port]" % user, "To: <sip:%s@[remote_ip]:[remote_port]>" % user) if first \
        else ("[next_url]", "[last_To:]")
    retrans = "" if method == "ACK" else ' retrans="500"'
    head = ("%s %s SIP/2.0\nVia: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            "From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n%s\n"
            "Call-ID: [call_id]\nCSeq: %d %s\nContact: <sip:sipp@[local_ip]:[local_port]>\nMax-Forwards: 70\n"
            % (method, uri, to, cseq, method))
    head += "".join(h + "\n" for h in extra)
    if body:
        head += "Content-Type: %s\nContent-Length: [len]\n\n" % ctype + body
    else:
        head += "Content-Length: 0\n\n"
    return "  <send%s%s><![CDATA[\n%s]]></send>\n" % (retrans, attrs, head)


def sipp_scenario(name, *parts):
    return '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="%s">\n%s</scenario>\n' % (
        name, "".join(p if p.endswith("\n") else p + "\n" for p in parts))


def sipp_reply(code, reason, body=None, tag=True, cseq=None, extra="",
               contact="Contact: <sip:sipp@[local_ip]:[local_port]>"):
    """A <send> of sipp's response to the last request it received. tag=True adds sipp's To tag (the answer to a
    dialog's first request; a request in the dialog has it already); body: an SDP (sdp(...)); cseq: the method
    answered when it is not the last request's (the INVITE a CANCEL named: RFC 3261 9.2); extra: header lines;
    contact: the Contact line (a registrar's 200 gives back the binding: "[last_Contact:]")."""
    head = "SIP/2.0 %d %s\n[last_Via:]\n[last_From:]\n%s\n[last_Call-ID:]\n%s\n" % (
        code, reason, "[last_To:];tag=[pid]SIPpTag01[call_number]" if tag else "[last_To:]",
        "CSeq: [last_cseq_number] %s" % cseq if cseq else "[last_CSeq:]")
    head += contact + "\n" + "".join(l + "\n" for l in extra.splitlines())
    if body:
        head += "Content-Type: application/sdp\nContent-Length: [len]\n\n" + body
    else:
        head += "Content-Length: 0\n\n"
    return "  <send><![CDATA[\n%s]]></send>\n" % head


def sipp_setdest(host, port):
    """sipp sends the rest of the call to host:port (a phone that moved to a new address keeps its port)."""
    return '  <nop><action><setdest host="%s" port="%d" protocol="udp"/></action></nop>\n' % (host, port)


ANSWERED = ('  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
            '  <recv response="200" rrs="true"%s/>\n')


def uac_scenario(media="", port="[media_port]", name="caller with media", rtd=False):
    """A sipp caller: INVITE (PCMU + telephone-event 101), ACK, `media` (sipp actions/pauses), BYE.
    rtd=True times INVITE -> 200 OK (sipp -trace_rtt)."""
    return sipp_scenario(
        name, sipp_send("INVITE", 1, sdp(port), first=True, attrs=' start_rtd="1"' if rtd else ""),
        ANSWERED % (' rtd="1"' if rtd else ""), sipp_send("ACK", 1), media,
        sipp_send("BYE", 2), '  <recv response="200" crlf="true"/>')


def _bound_ports(kind):
    """Local ports bound on this machine (UDP) or listening (TCP), from the kernel's table: looking must not bind the
    port ourselves, or the peer starting at that moment would find it taken."""
    path, listen_state = ("/proc/net/udp", None) if kind == "udp" else ("/proc/net/tcp", "0A")
    ports = set()
    with open(path) as f:
        for line in f.readlines()[1:]:
            w = line.split()
            if listen_state is None or w[3] == listen_state:
                ports.add(int(w[1].split(":")[1], 16))
    return ports


def wait_listening(port, proc, timeout=10, kind="udp"):
    """Wait until a peer process listens on port, so nothing sent before it is up is lost; False when it exited or
    the bound ran out."""
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if port in _bound_ports(kind):
            return True
        time.sleep(0.05)
    return False


def sipp_background(args, cwd=None):
    """Start sipp (bounded by the -timeout/-m the caller passes); finish() collects it."""
    exe = need_binary("sipp")
    return subprocess.Popen([exe] + sipp_args(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd)


# ---- Kamailio -----------------------------------------------------------------------------------------------

KAMAILIO_CFG = r'''#!KAMAILIO
debug=2
log_stderror=yes
children=2
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:%(port)d
alias="127.0.0.1:%(port)d"
mpath="%(mpath)s"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "db_text.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
modparam("usrloc","db_mode",0)
modparam("registrar","min_expires",%(min_expires)d)
modparam("registrar","max_expires",%(max_expires)d)
modparam("registrar","default_expires",%(max_expires)d)
modparam("auth_db","db_url","text://%(dbdir)s")
modparam("auth_db","calculate_ha1",yes)
modparam("auth_db","password_column","password")
modparam("auth_db","load_credentials","")
modparam("auth_db","use_domain",0)
%(presence_modules)s
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483","Too Many Hops"); exit; }
  if (!sanity_check("17895","7")) exit;
%(presence_route)s
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) t_relay(); exit; }
    sl_send_reply("404","Not here"); exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
  if (t_precheck_trans()) { t_check_trans(); exit; }
  t_check_trans();
  if (is_method("REGISTER")) {
    if (!auth_check("$fd","subscriber","1")) {
      xlog("L_NOTICE", "uphone-test: challenge $rm from $fU\n"); auth_challenge("$fd","1"); exit;
    }
    xlog("L_NOTICE", "uphone-test: authorized $rm from $fU\n");
    consume_credentials();
    if (!save("location")) sl_reply_error();
    exit;
  }
  if (is_method("INVITE|MESSAGE|OPTIONS") && from_uri==myself) {
    if (!proxy_authorize("$fd","subscriber")) {
      xlog("L_NOTICE", "uphone-test: challenge $rm from $fU\n"); proxy_challenge("$fd","1"); exit;
    }
    xlog("L_NOTICE", "uphone-test: authorized $rm from $fU\n");
    consume_credentials();
  }
  if (is_method("INVITE|SUBSCRIBE")) record_route();
  if ($rU==$null) { sl_send_reply("484","Address Incomplete"); exit; }
  if (!lookup("location")) { sl_send_reply("404","Not Found"); exit; }
  if (!t_relay()) sl_reply_error();
  exit;
}
'''


# presence=True: Kamailio's presence server (package kamailio-presence-modules) with PIDF (presence_xml), its
# presentities in db_text files, watchers in memory and no XCAP authorization (every watcher may see)
PRESENCE_MODULES = r'''loadmodule "presence.so"
loadmodule "presence_xml.so"
modparam("presence","db_url","text://%(dbdir)s")
modparam("presence","subs_db_mode",0)
modparam("presence","min_expires",1)
modparam("presence","max_expires",%(presence_expires)d)
modparam("presence_xml","db_url","text://%(dbdir)s")
modparam("presence_xml","force_active",1)
'''
PRESENCE_ROUTE = r'''  if (is_method("PUBLISH|SUBSCRIBE") && $hdr(Event)=~"presence") {
    if (is_method("PUBLISH")) {
      if (!auth_check("$fd","subscriber","1")) {
        xlog("L_NOTICE", "uphone-test: challenge $rm from $fU\n"); auth_challenge("$fd","1"); exit;
      }
      consume_credentials();
      xlog("L_NOTICE", "uphone-test: PUBLISH from $fU expires=$hdr(Expires) if-match=$hdr(SIP-If-Match)\n");
      handle_publish();
    } else {
      handle_subscribe();
    }
    exit;
  }
'''
# the tables the presence module keeps in db_text (Kamailio 5.6's schema, as its kamdbctl would create them)
PRESENCE_TABLES = {
    "presentity": "id(int,auto) username(string) domain(string) event(string) etag(string) expires(int) "
                  "received_time(int) body(string) sender(string) priority(int) ruid(string,null) ",
    "active_watchers": "id(int,auto) presentity_uri(string) watcher_username(string) watcher_domain(string) "
                       "to_user(string) to_domain(string) event(string) event_id(string,null) to_tag(string) "
                       "from_tag(string) callid(string) local_cseq(int) remote_cseq(int) contact(string) "
                       "record_route(string,null) expires(int) status(int) reason(string,null) version(int) "
                       "socket_info(string) local_contact(string) from_user(string) from_domain(string) "
                       "updated(int) updated_winfo(int) flags(int) user_agent(string,null) ",
    "watchers": "id(int,auto) presentity_uri(string) watcher_username(string) watcher_domain(string) "
                "event(string) status(int) reason(string,null) inserted_time(int) ",
    "xcap": "id(int,auto) username(string) domain(string) doc(string) doc_type(int) etag(string) source(int) "
            "doc_uri(string) port(int) ",
}
PRESENCE_VERSIONS = {"presentity": 5, "active_watchers": 12, "watchers": 3, "xcap": 4}


class Kamailio:
    """Registrar + proxy with digest auth on a free port of 127.0.0.1 (self.uri for the phones' registrar/proxy).
    Its log (self.log) gets an `uphone-test: challenge|authorized <METHOD> from <user>` line per auth decision, and
    with presence=True an `uphone-test: PUBLISH from <user> expires=<Expires> if-match=<SIP-If-Match>` line per
    PUBLISH it takes (presence_expires: the longest publication it grants)."""

    def __init__(self, tmp, port=None, users=(("alice", "secret"), ("bob", "secret")), min_expires=5,
                 max_expires=3600, tls=None, presence=False, presence_expires=3600, tcp=False):
        self.exe = need_binary("kamailio")
        self.dir = str(tmp)
        self.port = port or free_port()
        self.uri = "sip:127.0.0.1:%d" % self.port
        # tls=(certificate, key) PEM files: a TLS listener too (Kamailio's tls module), self.tls_uri for the phones
        self.tls_port = free_port() if tls else None
        self.tls_uri = "sips:127.0.0.1:%d" % self.tls_port if tls else None
        db = os.path.join(self.dir, "db")
        os.makedirs(db, exist_ok=True)
        with open(os.path.join(db, "version"), "w") as f:
            f.write("id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n")
            if presence:
                for i, (t, v) in enumerate(sorted(PRESENCE_VERSIONS.items()), 1):
                    f.write("%d:%s:%d\n" % (i, t, v))
        if presence:
            for t, head in PRESENCE_TABLES.items():
                with open(os.path.join(db, t), "w") as f:
                    f.write(head + "\n")
        with open(os.path.join(db, "subscriber"), "w") as f:
            f.write("id(int,auto) username(string) domain(string) password(string) ha1(string,null) "
                    "ha1b(string,null) \n")
            for i, (u, p) in enumerate(users, 1):
                f.write("%d:%s:127.0.0.1:%s::\n" % (i, u, p))
        self.cfg = os.path.join(self.dir, "kamailio.cfg")
        with open(self.cfg, "w") as f:
            more = {"dbdir": db, "presence_expires": presence_expires}
            cfg = KAMAILIO_CFG % {"port": self.port, "mpath": kamailio_modules(), "dbdir": db,
                                  "min_expires": min_expires, "max_expires": max_expires,
                                  "presence_modules": PRESENCE_MODULES % more if presence else "",
                                  "presence_route": PRESENCE_ROUTE if presence else ""}
            if tcp:
                # SIP over TCP too, on the same port (a phone with sip.transport tcp registers and calls over it)
                cfg = cfg.replace("disable_tcp=yes\n", "disable_tcp=no\ntcp_accept_aliases=yes\n").replace(
                    "listen=udp:127.0.0.1:%d\n" % self.port,
                    "listen=udp:127.0.0.1:%d\nlisten=tcp:127.0.0.1:%d\n" % (self.port, self.port))
            if tls:
                if not os.path.exists(os.path.join(kamailio_modules(), "tls.so")):
                    need_binary("kamailio-tls-modules")     # Debian's package of tls.so: skip locally, fail in CI
                cfg = _with_tls(cfg, self.port, self.tls_port, tls[0], tls[1])
            f.write(cfg)
        self.proc = None
        self.log = os.path.join(self.dir, "kamailio.log")

    def start(self):
        chk = subprocess.run([self.exe, "-c", "-f", self.cfg], capture_output=True, text=True, timeout=30)
        if chk.returncode != 0:
            raise RuntimeError("kamailio config check failed:\n" + chk.stderr[-3000:])
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen([self.exe, "-DD", "-E", "-f", self.cfg, "-Y", self.dir, "-P",
                                      os.path.join(self.dir, "kamailio.pid")], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kamailio exited:\n" + open(self.log).read()[-3000:])
            if _sip_options_ok(self.port):
                return self
            time.sleep(0.2)
        raise RuntimeError("kamailio did not answer on 127.0.0.1:%d" % self.port)

    def stop(self):
        stop(self.proc)
        if self.proc is not None:
            self.logf.close()

    def text(self):
        with open(self.log) as f:
            return f.read()

    def auth_lines(self, what, method, user):
        """How many `uphone-test: <what> <method> from <user>` lines the log has (what: challenge|authorized)."""
        return self.text().count("uphone-test: %s %s from %s\n" % (what, method, user))


def _with_tls(cfg, port, tls_port, cert, key):
    """The Kamailio config with a TLS listener on tls_port (RFC 3261 26.2) beside the UDP one, the server
    certificate and key given (PEM), TLS 1.2 or later; tcp_accept_aliases honours a client's Via `alias` (RFC 5923):
    requests for that client's sent-by go back over the connection it opened (a phone that does not listen)."""
    cfg = cfg.replace("disable_tcp=yes\n", "disable_tcp=no\nenable_tls=yes\ntcp_accept_aliases=yes\n")
    cfg = cfg.replace('alias="127.0.0.1:%d"\n' % port,
                      'alias="127.0.0.1:%d"\nlisten=tls:127.0.0.1:%d\nalias="127.0.0.1:%d"\n'
                      % (port, tls_port, tls_port))
    return cfg.replace('loadmodule "kex.so"\n',
                       'loadmodule "kex.so"\nloadmodule "tls.so"\n'
                       'modparam("tls","certificate","%s")\nmodparam("tls","private_key","%s")\n'
                       'modparam("tls","tls_method","TLSv1.2+")\nmodparam("tls","verify_certificate",0)\n'
                       'modparam("tls","require_certificate",0)\n' % (cert, key))


def _sip_options_ok(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    try:
        s.bind(("127.0.0.1", 0))
        lp = s.getsockname()[1]
        msg = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKprobe%d\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
               "Call-ID: probe%d@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
               % (port, lp, time.time_ns(), time.time_ns())).encode()
        s.sendto(msg, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
        return data.startswith(b"SIP/2.0")
    except OSError:
        return False
    finally:
        s.close()


# ---- baresip ------------------------------------------------------------------------------------------------

BARESIP_CONFIG = """poll_method      epoll
sip_listen       127.0.0.1:%(port)d
net_interface    127.0.0.1
dns_server       127.0.0.1:53
audio_player     aubridge,sink
audio_source     aufile,%(source)s
audio_alert      aubridge,alert
rtp_ports        %(rtp_lo)d-%(rtp_hi)d
module_path      %(modpath)s
module           g711.so
module           aufile.so
module           aubridge.so
module           sndfile.so
module_tmp       uuid.so
module_tmp       account.so
module_app       contact.so
module_app       menu.so
module_app       ctrl_tcp.so
ctrl_tcp_listen  127.0.0.1:%(ctrl)d
snd_path         %(dumps)s
"""


class Baresip:
    """baresip as a second phone: SIP, RTP and its control socket (ctrl_tcp: netstring JSON) on free ports; it plays
    a tone_hz tone (aufile) and writes what it hears to dumps/ (sndfile)."""

    def __init__(self, tmp, account, port=None, ctrl=None, tone_hz=700, modules=()):
        self.exe = need_binary("baresip")
        self.dir = str(tmp)
        self.port, self.ctrl = port or free_port(), ctrl or free_port()
        self.uri = "sip:127.0.0.1:%d" % self.port
        rtp = free_range(20)
        self.dumps = os.path.join(self.dir, "dumps")
        os.makedirs(self.dumps, exist_ok=True)
        self.source = os.path.join(self.dir, "tone.wav")
        write_tone_wav(self.source, tone_hz, seconds=10)
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(BARESIP_CONFIG % {"port": self.port, "source": self.source, "rtp_lo": rtp, "rtp_hi": rtp + 19,
                                      "modpath": baresip_modules(), "ctrl": self.ctrl, "dumps": self.dumps})
            for m in modules:           # e.g. srtp.so: SDES-SRTP for accounts with ;mediaenc=srtp|srtp-mand
                if not os.path.exists(os.path.join(baresip_modules(), m)):
                    raise RuntimeError("baresip module %s is not installed (%s)" % (m, baresip_modules()))
                f.write("module           %s\n" % m)
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(account + "\n")
        self.proc = None
        self.sock = None
        self.events = []
        self._buf = b""

    def start(self):
        self.logf = open(os.path.join(self.dir, "baresip.log"), "w")
        self.proc = subprocess.Popen([self.exe, "-4", "-f", self.dir], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("baresip exited:\n" + open(os.path.join(self.dir, "baresip.log")).read()[-3000:])
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.ctrl), timeout=1)
                self.sock.setblocking(False)
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("baresip ctrl_tcp did not come up")

    def command(self, cmd, params=""):
        import json
        body = json.dumps({"command": cmd, "params": params, "token": str(time.time_ns())}).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))

    def poll_events(self):
        """Netstring JSON events from ctrl_tcp -> list of dicts (also kept in self.events)."""
        import json
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    break
                self._buf += d
        except (BlockingIOError, OSError):
            pass
        out = []
        while b":" in self._buf:
            n, _, rest = self._buf.partition(b":")
            if not n.isdigit() or len(rest) < int(n) + 1:
                break
            body, self._buf = rest[:int(n)], rest[int(n) + 1:]
            try:
                out.append(json.loads(body))
            except ValueError:
                pass
        self.events += out
        return out

    def saw(self, word):
        self.poll_events()
        return any(word in (e.get("type") or "") for e in self.events)

    def stop(self):
        if self.sock is not None:
            try:
                self.command("quit")
            except OSError:
                pass
            self.sock.close()
        stop(self.proc)
        if self.proc is not None:
            self.logf.close()

    def dumps_wavs(self):
        return [os.path.join(self.dumps, f) for f in sorted(os.listdir(self.dumps)) if f.endswith(".wav")]


class Watcher:
    """A presence watcher (RFC 3856) on a free port, to see what a presence server tells others: SUBSCRIBE to a
    presentity, answer every NOTIFY 200 and keep its body. The test's eyes on Kamailio, not a peer under test."""

    def __init__(self, server_port):
        self.server = ("127.0.0.1", server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", free_port()))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.bodies = []
        self.answers = []

    def subscribe(self, uri, expires=60):
        n = time.time_ns()
        msg = ("SUBSCRIBE %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKw%d\r\nMax-Forwards: 70\r\n"
               "From: <sip:watcher@127.0.0.1:%d>;tag=w%d\r\nTo: <%s>\r\nCall-ID: w%d@127.0.0.1\r\n"
               "CSeq: 1 SUBSCRIBE\r\nContact: <sip:watcher@127.0.0.1:%d>\r\nEvent: presence\r\n"
               "Accept: application/pidf+xml\r\nExpires: %d\r\nContent-Length: 0\r\n\r\n"
               % (uri, self.port, n, self.port, n, uri, n, self.port, expires))
        self.sock.sendto(msg.encode(), self.server)

    def poll(self, until, timeout):
        """Read for up to timeout s until until(self) holds; -> whether it did."""
        end = time.time() + timeout
        while time.time() < end:
            if until(self):
                return True
            try:
                data, src = self.sock.recvfrom(65536)
            except OSError:
                continue
            text = data.decode("utf-8", "replace")
            head, _, body = text.partition("\r\n\r\n")
            if text.startswith("SIP/2.0 "):
                self.answers.append(int(text[8:11]))
            elif text.startswith("NOTIFY "):
                self.bodies.append(body)
                lines = head.split("\r\n")
                keep = [l for l in lines[1:] if l.split(":", 1)[0].strip().lower() in
                        ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")]
                ok = "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
                self.sock.sendto(ok.encode(), src)
        return until(self)

    def close(self):
        self.sock.close()
