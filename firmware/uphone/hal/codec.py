# Codec boards' audio bring-up, in the order the parts need it: the I2S controller first (MCLK, SCLK and LRCK
# running: the ES8311/ES7210/ES8388 state machines clock from them, and esp-adf's AEC example for the Korvo-2 starts
# its I2S writer before audio_board_init()), then each codec over I2C with its register sequence, volume mapped to
# the codec's dB scale as Espressif's esp_codec_dev does (uphone.drivers.volume).
from uphone.drivers import volume as V
from uphone.hal import duplex


def _mics_mask(names):
    from uphone.drivers import es7210
    m = 0
    for n in names:
        m |= {"mic1": es7210.MIC1, "mic2": es7210.MIC2, "mic3": es7210.MIC3, "mic4": es7210.MIC4}[n]
    return m


def init_codecs(i2c, board, audio_cfg, rate, layout):
    """-> list of the codec drivers, initialised. Only call with the I2S clocks running."""
    a = board.get("audio") or {}
    dac = a.get("dac") or {}
    hw = V.hw_gain_db(**dac["hw_gain"]) if dac.get("hw_gain") else 0.0
    vol = audio_cfg.get("volume_speaker", 70)
    out = []
    codec = board.get("codec")
    if codec == "es8311":
        from uphone.drivers.es8311 import ES8311
        out.append(ES8311(i2c, hw_gain_db=hw).init(rate, slot_bits=layout.slot_bits,
                                                   mclk_from_sclk=bool(dac.get("mclk_from_sclk")), volume=vol,
                                                   dac_ref=False))
    elif codec == "es8388":
        from uphone.drivers.es8388 import ES8388
        out.append(ES8388(i2c, hw_gain_db=hw).init(rate, vol, (a.get("adc") or {}).get("gain_db", 24)))
    else:
        raise ValueError("codec %r has no duplex bring-up" % (codec,))
    adc = a.get("adc") or {}
    if adc.get("chip") == "es7210":
        from uphone.drivers.es7210 import ES7210
        out.append(ES7210(i2c).init(_mics_mask(adc.get("mics", ("mic1", "mic2"))), adc.get("gain_db", 30),
                                    host_bits=layout.slot_bits, host_slots=2))
    return out


def start(machine, board, audio_cfg, rate, i2c, log=print):
    """-> (DuplexAudio or None, [codecs]). None when the firmware lacks the board's i2s_duplex module."""
    layout = duplex.Layout.from_board(board["audio"]["duplex"])
    try:
        dev = duplex.open_device(board["pins"]["i2s"], rate, layout)
    except ImportError:
        log("audio: this firmware has no i2s_duplex module; flash the board's own image "
            "(make firmware BOARD=%s): no audio" % board.get("name"))
        return None, []
    audio = duplex.DuplexAudio(dev, rate, layout)       # clocks are running from here on
    return audio, init_codecs(i2c, board, audio_cfg, rate, layout)
