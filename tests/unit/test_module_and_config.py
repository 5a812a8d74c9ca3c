"""Reading page modules without running them, and isr.json."""

from pathlib import Path

import pytest

from isr.errors import ConfigError, SiteError
from isr.site.config import FunctionConfig, parse_config
from isr.site.module import read_module


def module(tmp_path: Path, source: str) -> Path:
    file = tmp_path / "m.py"
    file.write_text(source)
    return file


def test_kind_and_settings_are_read_statically(tmp_path: Path) -> None:
    info = read_module(module(tmp_path, "raise SystemExit\nrevalidate = 5\nfallback = True\nasync def get_static_props(ctx): ...\n"), "m.py")
    assert info.kind == "ISR" and info.settings == {"revalidate": 5, "fallback": True}
    assert read_module(module(tmp_path, "def get_server_side_props(ctx): ...\n"), "m.py").kind == "SSR"
    assert read_module(module(tmp_path, "x = 1\n"), "m.py").kind == "static"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def broken(:\n", "syntax error"),
        ("revalidate = 0\n", "revalidate must be"),
        ("revalidate = compute()\n", "must be a literal"),
        ("fallback = 'sometimes'\n", "fallback must be"),
    ],
)
def test_bad_modules_get_one_line_errors(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(SiteError, match=message):
        read_module(module(tmp_path, source), "m.py")


def test_function_globs_apply_in_order() -> None:
    config = parse_config({
        "functions": {"pages/blog/*.py": {"memory": 512}, "pages/blog/[slug].py": {"maxDuration": 3}},
        "defaults": {"memory": 2048, "revalidate": 30},
        "limits": {"requestBody": "1mb"},
    })
    assert config.function_config("pages/blog/[slug].py") == FunctionConfig(512, 3.0)
    assert config.function_config("pages/blog/deep/x.py") == FunctionConfig(2048, 10.0)
    assert config.revalidate == 30 and config.request_body_limit == 2**20


def test_double_star_crosses_folders() -> None:
    config = parse_config({"functions": {"pages/api/**/*.py": {"memory": 256}}})
    assert config.function_config("pages/api/a/b.py").memory == 256
    assert config.function_config("pages/api/b.py").memory == 256


@pytest.mark.parametrize(
    "raw",
    [[], {"function": {}}, {"defaults": {"memory": 1}}, {"defaults": {"maxDuration": "x"}}, {"limits": {"requestBody": "lots"}}, {"defaults": {"revalidate": True}}],
)
def test_malformed_config_is_rejected(raw: object) -> None:
    with pytest.raises(ConfigError):
        parse_config(raw)
