"""The addressee fit recovers cue weights from labelled turns (synthetic feature vectors with known truth)."""
import numpy as np

from voice_robot.conversing.addressee import GROUP, OTHERS, PRIOR_WEIGHTS, Weights, scores, softmax
from voice_robot.conversing.fit import fit


def sample(rng, label):
    feats = {}
    for r in ('ada', 'bruno'):
        named = label == r and rng.random() < 0.5
        looked = label == r and not named or rng.random() < 0.1
        feats[r] = {'bias': 1.0, 'vocative': float(named), 'mention': 0.0, 'other_vocative': 0.0,
                    'gaze': float(looked) * rng.uniform(0.5, 1.0), 'gaze_end': 0.0, 'partner': 0.0,
                    'question': 0.0, 'nearest': float(rng.random() < 0.5), 'you_gaze': 0.0, 'speaking': 0.0}
    feats[GROUP] = {'bias': 1.0, 'group_words': float(label == GROUP), 'gaze_none': float(label == GROUP),
                    'request_unaddressed': 0.0, 'gaze_split': 0.0}
    feats[OTHERS] = {'gaze_person': float(label == OTHERS) * rng.uniform(0.6, 1.0), 'mention_any': 0.0,
                     'pronoun': 0.0, 'musing': 0.0, 'side_talk': 0.0, 'no_request': float(label == OTHERS),
                     'backchannel': 0.0, 'no_speaker': 0.0}
    return feats, label


def test_fit_improves_likelihood_and_accuracy():
    rng = np.random.default_rng(3)
    labels = ['ada', 'bruno', GROUP, OTHERS] * 30
    samples = [sample(rng, lab) for lab in labels]
    # Start from deliberately bad priors: gaze and group words switched off.
    bad = {k: dict(v) for k, v in PRIOR_WEIGHTS.items()}
    bad['robot']['gaze'] = 0.0
    bad[GROUP]['group_words'] = 0.0
    weights, stats = fit(samples, Weights(bad), l2=0.01)
    assert stats['loss_fitted'] < stats['loss_prior']
    assert stats['train_accuracy_fitted'] >= 0.95 > stats['train_accuracy_prior']
    assert weights.values['robot']['gaze'] > 1.0 and weights.values[GROUP]['group_words'] > 1.0
    probs = softmax(scores(samples[0][0], weights))
    assert max(probs, key=probs.get) == 'ada'
