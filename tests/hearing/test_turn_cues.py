"""End-of-turn and backchannel cues on TTS renders (phrases and voices the weights were not fitted on)."""
import numpy as np
import pytest

from hearing_helpers import tts
from voice_robot.hearing import turn_cues as tc

BACKCHANNELS = ('Uh-huh, yes.', 'Mm, okay.', 'Yeah, right.', 'Mhm, sure.', 'Okay, okay.', 'Right, right.',
                'Hmm, yes.', 'Oh, I see.')
INTERRUPTIONS = ('Stop it.', 'Excuse me, sorry.', 'Wait, wait.', 'No, stop.', 'Sorry, can I ask something?',
                 'Hold on a second.', 'Stop, I need help.', 'Excuse me, one question.')
# Voices outside the fitting set (espeak f2, m2 variants) beside some inside it.
VOICES = ('espeak:en+f2', 'espeak:en-us+m2', 'flite:awb', 'piper:joe')


@pytest.fixture(scope='module')
def renders():
    return [(voice, text, label, tts(voice, text)) for voice in VOICES
            for label, phrases in ((1, BACKCHANNELS), (0, INTERRUPTIONS)) for text in phrases]


def test_early_backchannel_estimate_from_the_first_180_ms(renders):
    early = np.array([tc.backchannel_probability_early(audio[:int(0.2 * 16000)]) for _, _, _, audio in renders])
    labels = np.array([label for _, _, label, _ in renders])
    accuracy = float(np.mean((early > 0.5) == labels))
    # Acoustics alone are weak evidence (reported by the bench); better than chance on unseen phrases.
    assert accuracy > 0.6, accuracy
    assert np.mean(early[labels == 1]) > np.mean(early[labels == 0])
    assert np.all((early >= 0.1) & (early <= 0.9))          # tempered: never certain from 180 ms


def test_transcript_and_duration_settle_it(renders):
    for voice, text, label, audio in renders:
        early = tc.backchannel_probability_early(audio)
        p = tc.backchannel_probability(text, audio.size / 16000, early=early)
        assert (p > 0.5) == bool(label), (voice, text, p)
    long_answer = 'Yeah, I think the second option is better because it is closer to the station.'
    assert tc.backchannel_probability(long_answer, 4.0, early=0.8) < 0.2


def test_a_hum_is_a_backchannel_however_it_is_spelt():
    for hum in ('Mmm.', 'Hmmm...', 'Mmhmm.', 'Hm.', 'Mm-hm.', 'mmmm'):
        assert tc.lexicon_score(hum)[0] == 1.0, hum
        assert tc.backchannel_probability(hum, 1.2, early=0.5) > 0.9, hum
    # Words that merely contain m and h are not hums.
    assert tc.lexicon_score('Mohammed is here.')[0] == 0.0
    assert tc.lexicon_score('hmm, where is the station?')[0] < 0.5


def test_end_of_turn_from_the_transcript():
    complete = tc.end_of_turn_probability('Could you tell me where the station is?')
    statement = tc.end_of_turn_probability('I would like a coffee, please.')
    trailing = tc.end_of_turn_probability('I would like a coffee and')
    filler = tc.end_of_turn_probability('So I was thinking, um')
    dangling = tc.end_of_turn_probability('When we get to the station,')
    assert complete > 0.8 and statement > 0.8
    assert max(trailing, filler, dangling) < 0.3


def test_end_of_turn_uses_prosody_of_real_speech():
    finished = tts('flite:slt', 'I would like a coffee, please.')
    cut = tts('flite:slt', 'I would like a coffee, and then I would also like')
    cut = cut[:int(cut.size * 0.55)]                    # stopped mid-phrase, voiced to the end
    p_finished = tc.prosody_features(finished)
    p_cut = tc.prosody_features(cut)
    assert p_finished.energy_decay_db > p_cut.energy_decay_db
    # Without a transcript (ASR off or empty), prosody alone still ranks them.
    assert tc.end_of_turn_probability('', finished) > tc.end_of_turn_probability('', cut)


def test_features_refuse_too_little_audio():
    with pytest.raises(ValueError, match='too little audio'):
        tc.onset_features(np.zeros(500, np.float32))
    assert tc.backchannel_probability_early(np.zeros(500, np.float32)) == 0.5
    assert tc.prosody_features(np.zeros(100, np.float32)).final_lengthening == 1.0


def test_fit_logistic_learns_a_separable_rule():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    y = (x[:, 0] - 0.5 * x[:, 2] > 0).astype(float)
    w, b, mean, std = tc.fit_logistic(x, y, l2=0.001, iterations=3000, lr=0.5)
    p = 1 / (1 + np.exp(-(((x - mean) / std) @ w + b)))
    assert np.mean((p > 0.5) == y) > 0.95
    assert w[0] > 0 > w[2] and abs(w[1]) < 0.5 * abs(w[0])


def test_a_name_alone_holds_the_turn_for_the_request_that_follows():
    names = {'luna', 'dex', 'remi'}
    for text in ('Luna.', 'Hey Dex.', 'Remi,', 'Sorry, Remi.'):
        assert tc.end_of_turn_probability(text, names=names) < 0.15, text
    assert tc.end_of_turn_probability('Luna, please call the IT help desk for us.', names=names) > 0.7
    # Without names nothing is a vocative; a name inside a request is not "only a name".
    assert tc.end_of_turn_probability('Luna.') > 0.5
    assert not tc.vocative_only(['luna', 'call', 'the', 'desk'], names)


@pytest.mark.parametrize('text, cut_in', [
    ('Sorry.', True), ('Wait, wait.', True), ('hold on a second', True), ('Excuse me, where is it?', True),
    ('One moment, please.', True), ('Stop, that is enough.', True),
    ('Hey, hey, hey, Kenton.', False), ('You got it?', False), ('So that is it.', False), ('Mm-hmm.', False),
    ('Waiter!', False), ('', False)])
def test_a_cut_in_opening_is_told_from_garbled_residue(text, cut_in):
    assert tc.opens_as_cut_in(text) is cut_in


@pytest.mark.parametrize('path, features', [(tc.OVER_OWN_VOICE_MODEL, tc.OVER_OWN_VOICE_FEATURES),
                                            (tc.OVER_OWN_VOICE_ENCODER_MODEL, tc.ENCODER_FEATURES)])
def test_each_over_own_voice_model_is_bundled_for_each_early_window(path, features):
    model = tc.over_own_voice_models(str(path))
    assert model.features == features and model.windows == sorted(tc.EARLY_WINDOWS_S)
    hum = tts('flite:slt', 'Mm-hmm.')
    for window, classifier in model.models.items():
        assert classifier.n_features_in_ == model.vector(hum[:int((window + 0.02) * 16000)], 16000, window).size
        p = tc.backchannel_probability_early(hum, 16000, window, models=model)
        assert tc.EARLY_MIN <= p <= 1 - tc.EARLY_MIN


def test_the_default_over_own_voice_model_joins_encoder_and_trees_and_falls_back_to_trees(monkeypatch, caplog):
    both = tc.default_over_own_voice_model()
    assert both.features == f'{tc.ENCODER_FEATURES}+{tc.OVER_OWN_VOICE_FEATURES}'
    assert both.windows == sorted(tc.EARLY_WINDOWS_S)
    hum = tts('flite:slt', 'Mm-hmm.')[:int(0.2 * 16000)]
    encoder, trees = (m.probability(hum, 16000, 0.18) for m in both.members)
    joined = both.probability(hum, 16000, 0.18)
    assert min(encoder, trees) <= joined <= max(encoder, trees)     # the mean of their log-odds
    assert both.probability(hum, 16000, 0.5) is None                # no model for that window

    def no_whisper(model):
        raise ImportError('no faster_whisper here')
    tc.over_own_voice_models.cache_clear()
    monkeypatch.setattr(tc, 'load_onset_encoder', no_whisper)
    try:
        assert tc.default_over_own_voice_model().features == tc.OVER_OWN_VOICE_FEATURES
        assert 'needs the Whisper encoder' in caplog.text and 'only the bundled trees' in caplog.text
    finally:
        tc.over_own_voice_models.cache_clear()


def test_the_onset_encoder_describes_a_short_clip_and_rejects_what_it_cannot(tmp_path):
    encoder = tc.load_onset_encoder('tiny.en')
    wait = tts('flite:slt', 'Wait.')[:int(0.2 * 16000)]
    vector = encoder.vector(wait)
    assert vector.shape == (2 * encoder.states(wait).shape[1],) and np.all(np.isfinite(vector))
    assert not np.allclose(vector, encoder.vector(tts('flite:slt', 'Mm-hmm.')[:int(0.2 * 16000)]))
    with pytest.raises(ValueError, match='too little audio'):
        encoder.vector(wait[:500])
    broken = wait.copy()
    broken[10] = np.nan
    with pytest.raises(ValueError, match='non-finite'):
        encoder.vector(broken)


def test_a_missing_or_foreign_model_file_is_not_loaded(tmp_path, caplog):
    import joblib
    foreign = tmp_path / 'foreign.joblib'
    joblib.dump({'features': 'something_else/9', 'models': {0.18: object()}}, foreign)
    broken = tmp_path / 'broken.joblib'
    broken.write_bytes(b'not a joblib file')
    for path in (tmp_path / 'missing.joblib', foreign, broken):
        assert tc.over_own_voice_models(str(path)) is None
    assert 'not loaded' in caplog.text and "has features 'something_else/9'" in caplog.text


def test_fitting_writes_a_bundle_the_stage_loads(tmp_path):
    from voice_robot.bench.hearing import fit_over_own_voice_models
    rng = np.random.default_rng(0)
    size = tc.barge_in_vector(tts('flite:slt', 'Wait.'), 16000, 0.18).size
    data = {}
    for window in tc.EARLY_WINDOWS_S:
        y = np.arange(120) % 2
        x = rng.standard_normal((120, size)) + y[:, None] * 0.8      # separable enough to learn
        data[window] = (x, y, np.array(['v1', 'v2', 'v3'] * 40))
    path = tmp_path / 'model.joblib'
    report = fit_over_own_voice_models(data, data, path)
    assert all(r['test_accuracy'] > 0.9 and r['voice_left_out_accuracy'] > 0.7 for r in report.values())
    assert all(r['train_residue'] == 0 and r['residue_at_most_0.1'] is None for r in report.values())
    loaded = tc.over_own_voice_models(str(path))
    assert loaded.windows == sorted(tc.EARLY_WINDOWS_S)
    assert loaded.models[0.18].predict_proba(data[0.18][0][:2]).shape == (2, 2)


def test_residue_rows_weigh_more_and_are_scored_apart_from_people(tmp_path):
    from voice_robot.bench.hearing import fit_over_own_voice_models

    def draw(seed):
        rng = np.random.default_rng(seed)
        y = np.arange(200) % 2
        y[180:] = 1                                  # residue: nothing to stop for...
        x = rng.standard_normal((200, 6)) + y[:, None] * 1.0
        x[180:] = rng.standard_normal((20, 6))       # ...yet it looks like a cut-in
        kinds = np.array(['person'] * 180 + ['residue'] * 20, dtype=object)
        return {0.18: (x, y, np.array(['v1', 'v2'] * 100), kinds)}
    train, test = draw(1), draw(2)
    # the linear model (the encoder bundle's kind) on plain vectors: no encoder needed to fit it
    light, heavy = (fit_over_own_voice_models(train, test, tmp_path / f'{w}.joblib', tc.ENCODER_FEATURES,
                                              residue_weight=w)[0.18] for w in (1.0, 20.0))
    assert light['train_residue'] == heavy['train_residue'] == 20 and light['test'] == 180
    assert heavy['residue_at_most_0.5'] < light['residue_at_most_0.5']


def test_an_encoder_bundle_is_fitted_on_clips_and_loaded_with_its_encoder(tmp_path):
    from voice_robot.bench.hearing import fit_over_own_voice_models, over_own_voice_features
    clips, labels, voices = [], [], []
    for voice in ('flite:slt', 'flite:rms', 'flite:kal', 'espeak:en+f3', 'espeak:en+m3'):   # 40: enough to fit
        for label, phrases in ((1, ('Mm-hmm.', 'Yeah.', 'Okay.', 'Right.')), (0, ('Wait.', 'Sorry, stop.', 'Excuse me.', 'Hold on.'))):
            for text in phrases:
                clips.append(tts(voice, text)[:int(0.2 * 16000)])
                labels.append(label)
                voices.append(voice)
    clips.append(np.zeros(300, np.float32))        # too short for the encoder: left out, not an error
    labels.append(1)
    voices.append('flite:slt')
    dataset = {0.18: (clips, np.array(labels), np.array(voices))}
    encoder = tc.load_onset_encoder('tiny.en')
    data = over_own_voice_features(dataset, tc.ENCODER_FEATURES, encoder)
    assert data[0.18][0].shape == (len(clips) - 1, encoder.vector(clips[0]).size)
    path = tmp_path / 'encoder.joblib'
    report = fit_over_own_voice_models(data, data, path, tc.ENCODER_FEATURES, 'tiny.en')
    assert report[0.18]['train'] == len(clips) - 1 and report[0.18]['test_auc'] > 0.9   # fits what it saw
    loaded = tc.over_own_voice_models(str(path))
    assert loaded.features == tc.ENCODER_FEATURES and loaded.encoder is encoder and loaded.windows == [0.18]
    p_wait = tc.backchannel_probability_early(clips[4], 16000, 0.18, models=loaded)
    p_hum = tc.backchannel_probability_early(clips[0], 16000, 0.18, models=loaded)
    assert p_wait < 0.5 < p_hum
    # a window the bundle has no classifier for falls back to the clean-render logistic model
    assert tc.backchannel_probability_early(clips[0], 16000, 0.3, models=loaded) == \
        tc.backchannel_probability_early(clips[0], 16000, 0.3)
