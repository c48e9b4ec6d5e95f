"""The documentation cannot drift: the flag reference is regenerated, links resolve, README is short."""

import importlib.util
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_flag_reference_is_current():
    spec = importlib.util.spec_from_file_location("flag_reference", os.path.join(ROOT, "scripts", "flag_reference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(mod.TARGET, encoding="utf-8") as f:
        assert f.read() == mod.render(), "docs/flags.md is stale: run `make docs`"
    with open(mod.TEMPLATE_METADATA, encoding="utf-8") as f:
        assert f.read() == mod.render_template_metadata(), "dataflow/metadata.json is stale: run `make docs`"


def test_every_flag_is_in_the_reference():
    from preprocessing.options import build_parser
    from training.doctor import build_parser as doctor_parser

    with open(os.path.join(ROOT, "docs", "flags.md"), encoding="utf-8") as f:
        text = f.read()
    for parser in (build_parser(), doctor_parser()):
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}`" in text, flag


def test_readme_is_short_and_its_links_resolve():
    for name in ("README.md", "docs/architecture.md", "docs/design.md", "docs/deploy.md"):
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            text = f.read()
        if name == "README.md":
            assert len(text.splitlines()) <= 250
            assert "make demo" in text and "make test" in text
        base = os.path.dirname(os.path.join(ROOT, name))
        for target in re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert os.path.exists(os.path.join(base, target)), f"{name} links to missing {target}"
