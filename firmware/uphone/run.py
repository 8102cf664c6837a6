# uPhone on a desktop runtime (CPython, or the MicroPython unix port with the firmware frozen in): config file ->
# phone with the desktop audio HAL -> runtime loop, console on stdin/stdout (a pty when a host gives one: the same
# line protocol as the phone's UART). `phonectl sim` and the phone-level tests start phones through main().
import sys

from uphone import config
from uphone.loop import Loop, StdioConsole
from uphone.compat import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any  # noqa: F401  (type comments; MicroPython has no typing)

_MP = sys.implementation.name == "micropython"


def _path(base, p):
    return p if (not base or p.startswith("/")) else base + "/" + p


def audio_devices(cfg, base=""):
    """audio.source / audio.sink -> (source, sink): "tone:<hz>", "silence" or a 16-bit mono WAV path (relative to
    the config file's folder). The device runs at audio.rate, as the board's I2S would."""
    from uphone.hal.desktop import WavSource, WavSink, NullDevice
    a = cfg["audio"]
    rate = a["rate"]
    src, snk = a["source"], a["sink"]
    source = NullDevice() if src == "silence" else WavSource(src if src.startswith("tone:") else _path(base, src),
                                                             rate)
    sink = NullDevice() if snk == "silence" else WavSink(_path(base, snk), rate)
    return source, sink


def main(config_path=None, log=print, pcap=None):
    """Run one phone until its console's input ends (the host closed it), then unregister and hang up. Without a
    config only the console runs (its table self-test: `selftest on`), as on a board with no config file yet.
    pcap: an object with .write(data, src, dst) for every SIP datagram (the desktop's `phonectl sim --pcap`)."""
    phone = source = sink = None  # type: Any
    if config_path is not None:
        base = config_path.rpartition("/")[0]
        cfg, errors = config.load(config_path, config_path + ".good")
        for e in errors:
            log("config: " + e)
        if cfg is None:
            log("config: nothing usable in %s" % config_path)
            return 1
        from uphone.phone import Phone
        phone = Phone(cfg, base_dir=base)
        source, sink = audio_devices(cfg, base)
        phone.set_audio(source, sink)
    io = None  # type: Any
    if _MP:
        io = StdioConsole()
    else:
        from uphone.loop import FdConsole
        io = FdConsole(0, 1)
    loop = Loop(io, phone)
    if phone is not None:
        from uphone.hal.desktop import Link
        loop.console.net = Link(phone)      # `net reconnect [ip]`: the link drops and comes back (at ip)
    loop.stop_on_eof = True
    loop.pcap = pcap
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    finally:
        loop.stopped = False
        if phone is not None:
            phone.shutdown(loop)
        if sink is not None:
            sink.close()
            source.close()
        if pcap is not None:
            pcap.close()
        if phone is not None:
            io.write("cov " + loop.console.coverage())  # the rows this phone took (the tests gather them)
        io.write("bye")
    return 0
