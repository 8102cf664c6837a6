# The documents users read stay true: the shipped config schema is the firmware's, the README opens with the two
# set-up commands, and every phonectl verb the README names exists.
import json
import os
import re

from tests.conftest import ROOT
from uphone import config as cfgmod


def test_shipped_config_schema_is_the_firmware_schema():
    with open(os.path.join(ROOT, "docs", "config.schema.json")) as f:
        shipped = json.load(f)
    from host_tools.config_cmd import json_schema
    assert shipped == json_schema(cfgmod), "regenerate: phonectl config schema > docs/config.schema.json"


def test_readme_opens_with_the_two_setup_commands():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    block = text.split("```", 2)[1]
    lines = block.strip().splitlines()
    if lines and " " not in lines[0].strip():
        lines = lines[1:]          # a language tag such as ```sh
    cmds = [l.split("#")[0].strip() for l in lines if l.strip()]
    assert cmds[:2] == ["make demo", "make test"]


def test_readme_verbs_exist():
    from host_tools.cli import build_parser
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    verbs = set(re.findall(r"phonectl ([a-z]+)", text)) | set(re.findall(r"-m host_tools ([a-z]+)", text))
    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices)
    assert verbs and verbs <= known, verbs - known
