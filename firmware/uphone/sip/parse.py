# Parsing SIP (RFC 3261 7, 18.3): bytes -> Message, checked on the way (strict start lines, the header checks every
# UA needs before it can use a message, RFC 4475), and the TCP framing of a byte stream by Content-Length.
from uphone.sip.headers import CANON, canon, title, is_token, split_list, parse_via, parse_name_addr
from uphone.sip.message import Message

MAX_MESSAGE = 65535


class ParseError(Exception):
    def __init__(self, code, reason, partial=None):
        # super(), not Exception.__init__: MicroPython's Exception has no __init__ attribute (AttributeError)
        super().__init__("%d %s" % (code, reason))
        self.code = code
        self.reason = reason
        self.partial = partial


# headers the parser checks (RFC 3261 7.3, 20): canonical name -> kind; 1-4 are parsed, 2-3 and 5-10 are single
_KIND = {"Via": 1, "From": 2, "To": 3, "Contact": 4, "Content-Length": 5, "CSeq": 6, "Call-ID": 7,
         "Max-Forwards": 8, "Content-Type": 9, "Expires": 10}


def _split_head(data):
    """-> (head str, body bytes, separator found)."""
    i = data.find(b"\r\n\r\n")
    j = data.find(b"\n\n")
    if i >= 0 and (j < 0 or i <= j):
        return data[:i], data[i + 4:], True
    if j >= 0:
        return data[:j], data[j + 2:], True
    return data, b"", False


def parse(data):
    if len(data) > MAX_MESSAGE:
        raise ParseError(413, "Message Too Large")
    # leading CRLFs are allowed (keepalives, RFC 3261 7.5)
    if data[:2] == b"\r\n" or not isinstance(data, bytes):
        k = 0
        while data[k:k + 2] == b"\r\n":
            k += 2
        data = bytes(data[k:])
    # head/body split, decode and line split. The usual case: CRLF line ends only, so splitting the head at the
    # first CRLFCRLF and the lines on CRLF is what the general path below gives (no LF outside a CRLF means no
    # LFLF before that CRLFCRLF either)
    text = None
    i = data.find(b"\r\n\r\n")
    if i >= 0:
        try:
            text = data[:i].decode("utf-8")
        except UnicodeError:
            pass
        if text is not None:
            lines = text.split("\r\n")
            if text.count("\n") == len(lines) - 1:
                body = data[i + 4:]
            else:
                text = None
    if text is None:
        head, body, _sep = _split_head(data)
        try:
            text = head.decode("utf-8")
        except UnicodeError:
            raise ParseError(400, "Bad Encoding")
        lines = (text.replace("\r\n", "\n") if "\r" in text else text).split("\n")
        fold = "\n " in text or "\n\t" in text
    else:
        fold = False        # folded lines are found by _scan (a line starting with SP/HT is never a known name)
    start = lines[0]
    m = Message()
    r = _scan(m, _unfold(lines) if fold else lines[1:], fold, text)
    if r is None:
        m = Message()
        r = _scan(m, _unfold(lines), True, text)
    errors, sv, dup, perr = r
    # start line
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0" or len(parts[1]) != 3 or not parts[1].isdigit():
            raise ParseError(400, "Bad Status Line", None)
        m.status = int(parts[1])
        if not 100 <= m.status <= 699:
            raise ParseError(400, "Bad Status Code", None)
        m.reason = parts[2] if len(parts) > 2 else ""
        cs = sv[6]
        m.method = cs.partition(" ")[2].strip() if cs else ""
    else:
        parts = start.split(" ")
        if len(parts) != 3:
            raise ParseError(400, "Bad Request Line", m if _answerable(m) else None)
        method, uri, ver = parts
        if not (method and uri and ver):
            raise ParseError(400, "Bad Request Line", m if _answerable(m) else None)
        m.method = method
        m.uri = uri
        if not method.isalpha() and not is_token(method):
            raise ParseError(400, "Bad Method", m if _answerable(m) else None)
        if ver != "SIP/2.0":
            if ver.upper().startswith("SIP/"):
                raise ParseError(505, "Version Not Supported", m if _answerable(m) else None)
            raise ParseError(400, "Bad Request Line", m if _answerable(m) else None)
        if "<" in uri or ">" in uri or ":" not in uri:
            raise ParseError(400, "Bad Request-URI", m if _answerable(m) else None)
        if "?" in uri and uri[:4].lower() in ("sip:", "sips") and "?" in uri[uri.rfind("@") + 1:]:
            # headers are not allowed in a Request-URI (RFC 3261 19.1.5, RFC 4475 3.1.2.11)
            raise ParseError(400, "Bad Request-URI", m if _answerable(m) else None)
    if errors:
        raise ParseError(400, "Bad Header", m if m.is_request and _answerable(m) else None)
    # semantic checks every UA needs before it can use the message
    bad = _check(m, sv, dup, perr)
    if bad is not None:
        raise ParseError(400, bad, m if m.is_request and _answerable(m) else None)
    # body framing by Content-Length (UDP: extra octets are ignored, a short body is an error)
    cl = sv[5]
    if cl is not None:
        n = int(cl)
        if n > len(body):
            raise ParseError(400, "Content-Length Too Large", m if m.is_request and _answerable(m) else None)
        m.body = body[:n]
    else:
        m.body = body
    return m


def _unfold(lines):
    """Header lines after the start line, continuation lines joined (RFC 3261 7.3.1)."""
    raw = []  # type: list
    for ln in lines[1:]:
        if ln[:1] in (" ", "\t") and raw:
            raw[-1] = raw[-1].rstrip() + " " + ln.strip()
        else:
            raw.append(ln)
    return raw


def _scan(m, raw, fold, text):
    """Header lines -> m.headers; -> (bad lines?, single values, duplicate name, parse error) or None when a
    folded line shows up and fold is False."""
    # one pass over the header lines: split name/value, and do the per-header checks of _check on the way
    # (their failures are only remembered here, and reported below in the order the message checks run)
    errors = False
    hs = m.headers
    append = hs.append
    memo = m._memo
    sv = [None] * 11        # kind -> first value of a single-valued header
    dup = None              # first single-valued header seen twice
    perr = None             # first Via / From / To / Contact that does not parse
    for ln in raw:
        name, colon, v = ln.partition(":")
        if not colon or not name:
            if not fold and ln[:1] in (" ", "\t") and ("\n " in text or "\n\t" in text):
                return None         # a folded line: start again on the unfolded lines
            if ln.strip():
                errors = True
            continue
        c = CANON.get(name)            # a lower-case or compact spelling
        if c is None:
            if not fold and ln[:1] in (" ", "\t") and ("\n " in text or "\n\t" in text):
                return None
            name = name.strip()
            c = CANON.get(name.lower())
            if c is None:
                if not is_token(name):
                    errors = True
                    continue
                c = title(name)
        k = _KIND.get(c)
        v = v.strip()
        append([c, v])
        if k is None:
            continue
        if k != 1 and k != 4:
            if sv[k] is None:
                sv[k] = v
            elif dup is None:
                dup = c
        if k < 5 and perr is None:
            try:
                if k == 1:
                    if "," in v:
                        first = True
                        for p in split_list(v):
                            pv = parse_via(p)
                            if first and v not in memo:
                                memo[v] = pv
                            first = False
                    else:
                        pv = parse_via(v)
                        if v not in memo:
                            memo[v] = pv        # the top Via, read again by transaction matching
                elif k == 4:
                    for p in (split_list(v) if "," in v else (v,)):
                        if p.strip() != "*" and p not in memo:
                            memo[p] = parse_name_addr(p)
                elif v not in memo:
                    memo[v] = parse_name_addr(v)
            except ValueError as e:
                perr = e
    return errors, sv, dup, perr


def _answerable(m):
    """Enough is readable to build a response (RFC 3261 8.2.6)."""
    try:
        vias = m.get_all("Via")
        if not vias:
            return False
        parse_via(vias[0])
        return bool(m.get("From") and m.get("To") and m.get("Call-ID") and m.get("CSeq"))
    except ValueError:
        return False


def _check(m, sv, dup, perr):
    """The reason a parsed message is unusable, or None. sv/dup/perr come from parse's header pass; header
    values there are already stripped."""
    if dup is not None:
        return "Multiple %s" % dup
    cl, cseq, mf = sv[5], sv[6], sv[8]
    if cl is not None and "," in cl:
        return "Multiple Content-Length"
    if cseq is not None and "," in cseq:
        return "Multiple CSeq"
    v = sv[7]
    if v is not None and "," in v:
        return "Multiple Call-ID"
    if mf is not None and "," in mf:
        return "Multiple Max-Forwards"
    if cl is not None and (not cl.isdigit() or len(cl) > 9):
        return "Bad Content-Length"
    if cseq is not None:
        num, _, meth = cseq.partition(" ")
        meth = meth.strip()
        if not num.isdigit() or len(num) > 10 or int(num) > 0xFFFFFFFF or not (meth.isalpha() or is_token(meth)):
            return "Bad CSeq"
        if m.status == 0 and meth != m.method:
            return "CSeq Method Mismatch"
        m._cs = (cseq, (int(num), meth))       # what cseq_num / cseq_method read next
    if mf is not None and (not mf.isdigit() or int(mf) > 255):
        return "Bad Max-Forwards"
    if perr is not None:
        return str(perr)
    exp = sv[10]
    if exp is not None and (not exp.isdigit() or len(exp) > 10):
        return "Bad Expires"
    return None


def split_stream(buf):
    """TCP framing: -> (message bytes or None, bytes consumed). Leading CRLFs (keepalives) are skipped."""
    k = 0
    while buf[k:k + 2] == b"\r\n":
        k += 2
    i = bytes(buf[k:]).find(b"\r\n\r\n")
    if i < 0:
        return None, 0
    head = bytes(buf[k:k + i]).decode("utf-8", "replace")
    n = 0
    for ln in head.split("\r\n")[1:]:
        name, colon, v = ln.partition(":")
        if colon and canon(name).lower() == "content-length":
            n = int(v.strip())
    end = k + i + 4 + n
    if len(buf) < end:
        return None, 0
    return bytes(buf[k:end]), end
