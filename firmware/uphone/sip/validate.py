# What a phone (a UAS) answers before its transaction and dialog logic: RFC 3261 8.2 checks, in RFC order.

KNOWN = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH",
         "INFO", "REFER", "MESSAGE", "UPDATE")


def check_request(msg, allow, accept=("application/sdp",), supported=()):
    """-> None when the request may go on, else (status, reason, [(header, value)])."""
    for h in ("To", "From", "Call-ID", "CSeq", "Via"):
        if not msg.get(h):
            return 400, "Missing %s" % h, []
    if msg.cseq_method != msg.method:
        return 400, "CSeq Method Mismatch", []
    m = msg.method
    # 8.2.1 method: unknown -> 501, known but not here -> 405 with Allow
    if m not in KNOWN:
        return 501, "Not Implemented", [("Allow", ", ".join(allow))]
    if m not in allow:
        return 405, "Method Not Allowed", [("Allow", ", ".join(allow))]
    # 8.2.2.1 Request-URI scheme
    scheme = msg.uri.split(":", 1)[0].lower()
    if scheme not in ("sip", "sips"):
        return 416, "Unsupported URI Scheme", []
    # 8.2.2.3 Require (Proxy-Require is for proxies; a UAS ignores it)
    req = [x.strip() for x in msg.get_all("Require") if x.strip()]
    bad = [x for x in req if x not in supported]
    if bad and m not in ("ACK", "CANCEL"):
        return 420, "Bad Extension", [("Unsupported", ", ".join(bad))]
    # 8.2.3 content processing
    if msg.body:
        ct = (msg.get("Content-Type") or "").split(";")[0].strip().lower()
        if ct not in accept:
            return 415, "Unsupported Media Type", [("Accept", ", ".join(accept))]
        enc = (msg.get("Content-Encoding") or "").strip().lower()
        if enc and enc != "identity":
            return 415, "Unsupported Media Type", [("Accept-Encoding", "identity")]
    # an INVITE whose Accept rules out SDP leaves no way to answer it
    if m == "INVITE":
        acc = [x.split(";")[0].strip().lower() for x in msg.get_all("Accept")]
        if acc and "application/sdp" not in acc and "application/*" not in acc and "*/*" not in acc:
            return 406, "Not Acceptable", [("Accept", "application/sdp")]
    return None


def options_response_headers(allow, accept, supported):
    return [("Allow", ", ".join(allow)), ("Accept", ", ".join(accept)),
            ("Accept-Encoding", "identity"), ("Accept-Language", "en"),
            ("Supported", ", ".join(supported))]
