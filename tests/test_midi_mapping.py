import pytest
import torch

from mst_live import ParameterError
from mst_live.losses import StyleTarget, gram
from mst_live.midi.mapping import CCRule, default_mapping, dump_mapping, load_mapping


def test_default_mapping_curves():
    m = default_mapping(morph=True)
    style = m.lookup(0, 1)[0]
    assert style.param == "style_weight" and style.value(0) == 0.0  # the content alone
    values = [style.value(v) for v in range(128)]
    assert values == sorted(values) and values[127] == pytest.approx(10.0)
    assert values[1] < 0.2 and values[64] < 1.5  # a log curve: fine control at the bottom
    assert m.lookup(3, 11)[0].param == "mix" and m.lookup(0, 7)[0].value(127) == pytest.approx(6.0)
    assert m.lookup(0, 2)[0].param == "morph"
    assert default_mapping().lookup(0, 2) == []
    assert m.lookup(0, 99) == []


def test_mapping_file_round_trip(tmp_path):
    m = default_mapping(morph=True)
    m.rules.append(CCRule(cc=20, param="steps", lo=0, hi=40, channel=9))
    f = tmp_path / "map.toml"
    f.write_text(dump_mapping(m))
    back = load_mapping(f)
    assert back.rules == m.rules
    assert back.lookup(9, 20)[0].value(127) == 40.0 and back.lookup(8, 20) == []


BAD = [
    ('[[cc]]\ncc = 1\nparam = "style_weight"\n\n[[cc]]\ncc = 2\nparam = "wobble"\n', "line 5", "wobble"),
    ('# header\n[[cc]]\ncc = 300\nparam = "mix"\n', "line 2", "cc = 300"),
    ('[[cc]]\ncc = 1\nparam = "mix"\ncurve = "wiggly"\n', "line 1", "curve"),
    ('[[cc]]\ncc = 1\nparam = "mix"\nmax = 5.0\n', "line 1", "max = 5.0"),
    ('[[cc]]\ncc = 1\nparam = "mix"\nchannel = 17\n', "line 1", "channel"),
    ('[[cc]]\ncc = 1\nparam = "mix"\ncolour = 3\n', "line 1", "colour"),
    ("[[cc]\ncc = 1\n", "line 1", "TOML"),
    ("[knobs]\nx = 1\n", "map.toml", "knobs"),
]


@pytest.mark.parametrize(("text", "where", "what"), BAD)
def test_mapping_errors_name_the_line(tmp_path, text, where, what):
    f = tmp_path / "map.toml"
    f.write_text(text)
    with pytest.raises(ParameterError) as err:
        load_mapping(f)
    assert where in str(err.value) and what in str(err.value) and "map.toml" in str(err.value)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(ParameterError, match="no such mapping file"):
        load_mapping(tmp_path / "nope.toml")


def test_blended_style_target_equals_the_mixed_gram():
    g = torch.Generator().manual_seed(0)
    fa = torch.rand(12, 40, generator=g, dtype=torch.float64)
    fb = torch.rand(12, 40, generator=g, dtype=torch.float64) ** 3
    targets = []
    for f in (fa, fb):
        vals, vecs = torch.linalg.eigh(gram(f))
        targets.append(StyleTarget.from_eig(vecs, vals.clamp(min=0), float((gram(f) ** 2).sum())))
    a, b = targets
    cross = float(((a.factor.T @ b.factor) ** 2).sum())
    mixed = a.blend(b, 0.3, cross)
    want = 0.7 * gram(fa) + 0.3 * gram(fb)
    assert torch.allclose(mixed.factor @ mixed.factor.T, want, atol=1e-10)
    assert float(mixed.sq_norm) == pytest.approx(float((want**2).sum()), rel=1e-9)
    assert a.blend(b, 0.0, cross) is a and a.blend(b, 1.0, cross) is b


def test_the_style_knob_ends_where_the_styles_own_sound_has_taken_over():
    """From FULL_AT on the style's own sound has its largest share: a range that went on past it
    would offer a stretch of knob that changes nothing."""
    from mst_live.palette import FULL_AT, TOP_SHARE, sound_share
    from mst_live.params import PARAMS, validate

    assert sound_share(FULL_AT) == TOP_SHARE and sound_share(0.9 * FULL_AT) < TOP_SHARE
    assert PARAMS["style_weight"].hi == FULL_AT and validate("style_weight", FULL_AT) == FULL_AT
    with pytest.raises(ParameterError, match=r"style_weight.*10"):
        validate("style_weight", FULL_AT + 0.5)
