"""Beams toward one of two overlapping talkers in a rendered room: the talker kept, the other reduced."""
import numpy as np
import pytest

from hearing_helpers import two_talker_scene
from voice_robot.hearing.audio import OverlapAdd, StreamingStft
from voice_robot.hearing.beamforming import Beamformer, make_beamformer, steering_vectors


def beam_power(scene, beamformer, target, others, noise_frames=40):
    """Output power of each talker's image (and of the noise) through a beam toward ``target``."""
    stft = StreamingStft(512, scene.mics.shape[1])
    for i in range(noise_frames):                   # the background alone, as the stage learns it
        beamformer.observe_noise(stft.frame(scene.noise[i * 256:(i + 1) * 256]))
    w = beamformer.weights(scene.azimuths[target], [scene.azimuths[o] for o in others])
    out = []
    for signal in list(scene.images) + [scene.noise]:
        stft, ola = StreamingStft(512, signal.shape[1]), OverlapAdd(512)
        y = [ola.frame(Beamformer.apply(w, stft.frame(signal[i:i + 256])))
             for i in range(0, signal.shape[0] - 255, 256)]
        out.append(float(np.mean(np.concatenate(y) ** 2)))
    return out


@pytest.mark.parametrize('kind', ['das', 'mvdr'])
@pytest.mark.parametrize('target', [0, 1])
def test_beam_keeps_its_talker_and_reduces_noise_and_the_other(kind, target):
    scene = two_talker_scene(channels=6, overlap=True)
    other = 1 - target
    mic = [float(np.mean(img[:, 0] ** 2)) for img in scene.images]
    bf = make_beamformer(kind, scene.robot.mic_positions_base(), 16000, 512)
    p = beam_power(scene, bf, target=target, others=[other])
    # Distortionless toward the talker (within reverberation and the loading).
    assert 0.4 < p[target] / mic[target] < 1.5
    # Uncorrelated microphone noise drops (delay-and-sum: about 1/channels).
    assert p[2] / float(np.mean(scene.noise[:, 0] ** 2)) < (0.3 if kind == 'das' else 0.9)
    sir_mic = 10 * np.log10(mic[target] / mic[other])
    sir_beam = 10 * np.log10(p[target] / p[other])
    # A 9 cm array has little directivity at speech frequencies: only MVDR's null buys real SIR.
    assert sir_beam > sir_mic + (-0.5 if kind == 'das' else 2.0), (kind, sir_mic, sir_beam)


def test_mvdr_nulls_the_interferer_better_than_delay_and_sum():
    scene = two_talker_scene(channels=6, overlap=True)
    das = beam_power(scene, make_beamformer('das', scene.robot.mic_positions_base(), 16000, 512), 1, [0])
    mvdr = beam_power(scene, make_beamformer('mvdr', scene.robot.mic_positions_base(), 16000, 512), 1, [0])
    assert mvdr[1] / mvdr[0] > das[1] / das[0]


def test_steering_vectors_are_unit_modulus_phases_and_unknown_kinds_fail():
    scene = two_talker_scene()
    d = steering_vectors(scene.robot.mic_positions_base(), 0.3, 16000, 512)
    assert d.shape == (257, 4) and np.allclose(np.abs(d), 1.0)
    assert np.allclose(d[0], 1.0)
    with pytest.raises(ValueError, match='das, mvdr'):
        make_beamformer('gsc', scene.robot.mic_positions_base(), 16000, 512)
