"""The output chain's stages, one by one, each with the plugin shape."""

from __future__ import annotations

import numpy as np

from mst_live.dsp.output_chain import Blend, Follow, Level, OutputChain

SR = 22050


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def tone(n: int, amp: float = 0.5, f: float = 440.0) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * f * np.arange(n) / SR)).astype(np.float32)


def test_every_stage_has_the_plugin_shape_and_no_delay():
    """Each stage answers a click in the same sample it hears it (its latency, 0, is true), and
    reset forgets what it heard: after it the stage gives what a new one gives."""
    click = np.zeros(4000, np.float32)
    click[1500] = 1.0
    noise = np.random.default_rng(0).standard_normal(3000).astype(np.float32)
    swell = np.linspace(0.2, 1.0, 4000, dtype=np.float32)  # the dry input's own dynamics, for the follower

    def dry(x):
        return x * swell[: x.size]

    stages = {
        "follow": (lambda: Follow(SR, 1.0), lambda st, x: st.process(x, dry(x))),
        "blend": (lambda: Blend(SR, 1.0), lambda st, x: st.process(x, dry(x), value=1.0)),
        "level": (lambda: Level(SR, 0.5), lambda st, x: st.process(x, gain=0.5)),
        "chain": (lambda: OutputChain(SR, follow=1, mix=1, gain=1, bypass=0),
                  lambda st, x: st.process(x, dry(x), mix=1, gain=1, bypass=0)),
    }
    for name, (new, run) in stages.items():
        stage = new()
        y = run(stage, click)
        assert stage.latency == 0 and y.size == click.size, name
        assert int(np.argmax(np.abs(y))) == 1500 and abs(float(y[1500])) > 0.1, name
        fresh = run(new(), noise)
        run(stage, noise[::-1] * 3)
        stage.reset()
        np.testing.assert_allclose(run(stage, noise), fresh, atol=1e-6, err_msg=name)


def test_blend_glides_to_a_new_value_without_a_step_and_is_block_size_blind():
    a, b = np.ones(2000, np.float32), np.zeros(2000, np.float32)
    one = Blend(SR, 0.0).process(a, b, value=1.0)
    assert one[0] < 0.01 and one[-1] > 0.999  # 10 ms glide: from b to a
    assert np.max(np.abs(np.diff(one))) < 0.01  # no step anywhere
    two = Blend(SR, 0.0)
    parts = np.concatenate([two.process(a[:300], b[:300], value=1.0), two.process(a[300:], b[300:], value=1.0)])
    np.testing.assert_allclose(parts, one, atol=1e-6)
    two.reset(0.25)
    assert abs(float(two.process(a[:1], b[:1], value=0.25)[0]) - 0.25) < 1e-6  # reset: starts there, no glide


def test_level_scales_after_its_glide():
    lv = Level(SR, 1.0)
    y = lv.process(np.ones(4000, np.float32), gain=0.5)
    assert abs(float(y[-1]) - 0.5) < 1e-4 and float(y[0]) > 0.9


def test_follow_imposes_the_inputs_dynamics_and_is_off_at_zero():
    wet, dry = tone(4 * SR), tone(4 * SR)
    dry[2 * SR :] *= 0.1  # the player gets 20 dB softer
    followed = Follow(SR, 1.0).process(wet, dry)
    assert _rms(followed[3 * SR :]) < 0.3 * _rms(followed[SR : 2 * SR])  # softer with the input
    np.testing.assert_array_equal(Follow(SR, 0.0).process(wet, dry), wet)


def test_follow_steps_aside_as_the_style_s_own_sound_takes_over_and_glides_there():
    """At a share of 1 the style's own course stands; turned there in the middle of a call, the
    gain glides (no step between samples); back at 0 it follows at once as if it never stopped."""
    wet, dry = tone(4 * SR), tone(4 * SR)
    dry[2 * SR :] *= 0.1
    aside = Follow(SR, 1.0).process(wet, dry, share=1.0)
    np.testing.assert_allclose(_rms(aside[3 * SR :]), _rms(wet[3 * SR :]), rtol=1e-3)
    half = Follow(SR, 1.0).process(wet, dry, share=0.5)
    assert _rms(Follow(SR, 1.0).process(wet, dry)[3 * SR :]) < _rms(half[3 * SR :]) < 0.9 * _rms(wet[3 * SR :])

    ones, loud = np.ones(SR, np.float32), np.ones(SR, np.float32)
    loud[SR // 2 :] = 0.1  # the player gets 20 dB softer half way through, the wet signal stays
    stage = Follow(SR, 1.0)
    stage.process(ones, ones, share=1.0)
    gain = stage.process(ones, loud, share=0.0)  # the knob comes down: the follower takes over
    assert np.abs(np.diff(gain)).max() < 2e-3  # a glide, not a step
    always = Follow(SR, 1.0)
    always.process(ones, ones)
    np.testing.assert_allclose(gain[SR // 2 :], always.process(ones, loud)[SR // 2 :], rtol=1e-3)


def test_the_chain_never_passes_the_ceiling_and_bypass_gives_the_input():
    chain = OutputChain(SR, follow=0.0, mix=1.0, gain=4.0, bypass=0.0)
    loud = chain.process(tone(SR, 0.9), tone(SR, 0.1), mix=1.0, gain=4.0, bypass=0.0)
    assert float(np.max(np.abs(loud))) <= 0.98 + 1e-6 and float(np.max(np.abs(loud))) > 0.9
    chain.reset(mix=1.0, gain=1.0, bypass=1.0)
    dry = tone(SR, 0.3, 220.0)
    out = chain.process(tone(SR, 0.5), dry, mix=1.0, gain=1.0, bypass=1.0)
    np.testing.assert_allclose(out, dry, atol=1e-6)  # bypassed: the input, whatever the wet signal
    half = chain.process(tone(SR, 0.5), dry, mix=0.0, gain=1.0, bypass=0.0)
    np.testing.assert_allclose(half[-100:], dry[-100:], atol=1e-4)  # mix 0: the input again, after the glides
