"""`voice-robot fit-addressee`: fit the addressee model's cue weights on the project's scenario library.

The system runs every scenario in closed loop (as in eval), each robot logs the cue values it computed
from its own perception for every turn, and the truth of the scenario labels each turn (robot name,
'robots' or 'others'). The weights maximise the conditional-logit likelihood with an L2 pull towards
the priors (few samples per cue). Only the project's library is used: the public scenarios are a
held-out test set and must never be passed here.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from voice_robot.conversing.addressee import (DEFAULT_WEIGHTS_FILE, KINDS, PRIOR_WEIGHTS, Weights, kind_of)

L2 = 0.5          # strength of the pull towards the priors


def design(features: dict[str, dict[str, float]]) -> tuple[list[str], np.ndarray]:
    """Rows: candidates; columns: the global weight vector (kind blocks)."""
    offsets, i = {}, 0
    for kind, names in KINDS.items():
        offsets[kind] = i
        i += len(names)
    cands = list(features)
    x = np.zeros((len(cands), i))
    for r, cand in enumerate(cands):
        kind = kind_of(cand)
        for name, value in features[cand].items():
            x[r, offsets[kind] + KINDS[kind].index(name)] = value
    return cands, x


def fit(samples: list[tuple[dict, str]], prior: Weights | None = None, l2: float = L2) -> tuple[Weights, dict]:
    """samples: (features per candidate, true candidate). Returns fitted weights and fit statistics."""
    prior = prior or Weights({k: dict(v) for k, v in PRIOR_WEIGHTS.items()})
    w0 = prior.vector()
    designs = []
    for feats, label in samples:
        cands, x = design(feats)
        if label not in cands:
            continue
        designs.append((x, cands.index(label)))
    if not designs:
        raise ValueError('no labelled turns to fit on')

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for x, y in designs:
            s = x @ w
            s -= s.max()
            p = np.exp(s)
            p /= p.sum()
            total -= math.log(max(p[y], 1e-12))
            grad -= x[y] - p @ x
        diff = w - w0
        return total / len(designs) + l2 * float(diff @ diff) / len(w), \
            grad / len(designs) + 2 * l2 * diff / len(w)

    before = loss(w0)[0]
    res = minimize(loss, w0, jac=True, method='L-BFGS-B')
    weights = Weights.from_vector(res.x)
    correct = sum(int(np.argmax(x @ res.x) == y) for x, y in designs)
    correct0 = sum(int(np.argmax(x @ w0) == y) for x, y in designs)
    stats = {'turns': len(designs), 'loss_prior': round(before, 4), 'loss_fitted': round(float(res.fun), 4),
             'train_accuracy_prior': round(correct0 / len(designs), 4),
             'train_accuracy_fitted': round(correct / len(designs), 4)}
    return weights, stats


def label_turns(record, feature_logs) -> list[tuple[dict, str]]:
    """Match each logged turn to the scenario utterance it overlaps most; label with the truth class."""
    from voice_robot.eval.score import expected_class, responders_by_utterance, overlap
    responders = responders_by_utterance(record)
    samples = []
    for log in feature_logs:
        turn = log['turn']
        best, best_ov = None, 0.0
        for u in record.utterances:
            ov = overlap(turn.start, turn.end, u.start, u.end)
            if ov > best_ov:
                best, best_ov = u, ov
        if best is None or best.backchannel:
            continue
        samples.append((log['features'], expected_class(best, record.robots, responders)))
    return samples


def cross_validate(groups: dict[str, list], l2: float) -> dict:
    """Leave-one-scenario-out: accuracy and calibration on scenarios the fit did not see.

    ``ece`` is the expected calibration error of the top probability (10 bins): how far the
    model's confidence is from how often it is right.
    """
    confidences, hits = [], []
    for held in groups:
        train = [s for name, ss in groups.items() if name != held for s in ss]
        if not train or not groups[held]:
            continue
        weights, _ = fit(train, l2=l2)
        w = weights.vector()
        for feats, label in groups[held]:
            cands, x = design(feats)
            if label in cands:
                s = x @ w
                p = np.exp(s - s.max())
                p /= p.sum()
                top = int(np.argmax(p))
                confidences.append(float(p[top]))
                hits.append(float(cands[top] == label))
    if not hits:
        return {'accuracy': float('nan'), 'ece': float('nan')}
    conf, hit = np.asarray(confidences), np.asarray(hits)
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum(abs(conf[bins == b].mean() - hit[bins == b].mean()) * (bins == b).mean() for b in range(10) if (bins == b).any())
    return {'accuracy': round(float(hit.mean()), 4), 'ece': round(float(ece), 4), 'turns': int(hit.size)}


def main_fit(args) -> int:
    import json
    from voice_robot.eval.runner import RunOptions, run_scenario
    from voice_robot.sim.scenario import load_scenario, scenario_files
    files = scenario_files(args.scenarios)
    shared = Path(__file__).resolve().parents[3] / 'shared' / 'scenarios'
    if any(shared.exists() and f.resolve().is_relative_to(shared.resolve()) for f in files):
        print('error: the public scenarios are a held-out test set; fit on sim/scenarios', file=sys.stderr)
        return 2
    groups: dict[str, list] = {}
    cache = Path(args.samples) if getattr(args, 'samples', None) else None
    if cache is not None and cache.exists() and getattr(args, 'reuse_samples', False):
        groups = {k: [(f, lab) for f, lab in v] for k, v in json.loads(cache.read_text()).items()}
    else:
        for f in files:
            sc = load_scenario(f)
            print(f'[fit] running {sc.name} ...', file=sys.stderr, flush=True)
            logs = []
            record = run_scenario(sc, None, RunOptions(progress=False), feature_sink=logs)
            groups[sc.name] = label_turns(record, logs)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(groups))
    samples = [s for ss in groups.values() for s in ss]
    l2 = getattr(args, 'l2', None) or L2
    weights, stats = fit(samples, l2=l2)
    stats['l2'] = l2
    held_out = cross_validate(groups, l2)
    stats['leave_one_scenario_out_accuracy'] = held_out['accuracy']
    stats['leave_one_scenario_out_ece'] = held_out['ece']
    out = Path(args.out) if args.out else DEFAULT_WEIGHTS_FILE
    weights.save(out, {'fitted_on': sorted(groups), **stats})
    print(f'[fit] {stats}')
    print(f'[fit] wrote {out}')
    return 0
