"""Template rendering: placeholders, literal braces, defaults, {prompt}, style presets."""

from __future__ import annotations

import pytest

from image_studio.errors import InvalidRequest
from image_studio.prompts.templates import BUILTIN_STYLES, Template, apply_style, placeholders, render, tidy


def test_placeholders_in_order_and_literal_braces():
    assert placeholders("a {x} and {y} and {x} {{not}}") == ["x", "y"]
    with pytest.raises(InvalidRequest) as info:
        placeholders("a {x")
    assert "lone '{'" in info.value.message and info.value.field == "prompt"
    with pytest.raises(InvalidRequest):
        placeholders("{1bad}")


def test_render_fills_variables_over_defaults_and_the_prompt():
    t = Template(id="t", name="t", prompt="{{json}} {subject} in {place}, {prompt}", negative_prompt="{avoid}",
                 defaults={"place": "Paris", "avoid": "text"})
    assert render(t, {"subject": "a cat"}, "sunset") == ("{json} a cat in Paris, sunset", "text")
    assert render(t, {"subject": "a dog", "place": "Rome"}) == ("{json} a dog in Rome", "text")
    with pytest.raises(InvalidRequest) as info:
        render(t, {})
    assert info.value.field == "variables.subject"
    with pytest.raises(InvalidRequest) as info:
        render(t, {"subject": "x", "nope": "y"})
    assert info.value.field == "variables.nope"


def test_styles_wrap_or_append_and_add_negative():
    wrap = BUILTIN_STYLES["pixel-art"]
    text, neg = apply_style(wrap, "a castle", "people")
    assert text.startswith("pixel-art a castle . low-res") and neg.startswith("people, sloppy")
    plain = Template(id="s", name="s", prompt="gold leaf", kind="style")
    assert apply_style(plain, "a castle", None) == ("a castle, gold leaf", None)


def test_tidy_drops_empty_pieces():
    assert tidy("a, , b,") == "a, b" and tidy(", a") == "a" and tidy("x,  . y") == "x . y"
