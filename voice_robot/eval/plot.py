"""Timeline plot of one scenario run: who spoke when, addressee truth vs decision, responses, latencies."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from voice_robot.eval.records import ScenarioRecord  # noqa: E402
from voice_robot.eval.score import attributed, heard_directions  # noqa: E402

KIND_COLOURS = {'reply': '#4C72B0', 'filler': '#8FB0DE', 'hold': '#B0B0B0'}


def _short(text: str, n: int = 38) -> str:
    return text if len(text) <= n else text[:n - 1] + '…'


def plot_scenario(record: ScenarioRecord, scored: dict, path: str | Path) -> Path:
    humans = record.humans
    robots = record.robots
    lanes = humans + robots
    y = {name: len(lanes) - i for i, name in enumerate(lanes)}
    fig_h = 1.2 + 0.75 * len(lanes)
    fig, ax = plt.subplots(figsize=(max(10.0, record.duration_s * 0.45), fig_h))
    rows = {r['id']: r for r in scored['utterances']}

    for utt in record.utterances:
        row = rows.get(utt.id, {})
        if utt.backchannel:
            colour = '#999999'
        elif row.get('addressee_correct') and row.get('response_correct'):
            colour = '#55A868'
        elif row.get('addressee_correct') or row.get('response_correct'):
            colour = '#DD8452'
        else:
            colour = '#C44E52'
        ax.broken_barh([(utt.start, utt.end - utt.start)], (y[utt.speaker] - 0.3, 0.6), facecolors=colour,
                       edgecolor='black', linewidth=0.5)
        truth = row.get('expected', 'backchannel' if utt.backchannel else '?')
        decision = row.get('decision', 'undetected')
        label = f'{utt.id}: "{_short(utt.text)}"\ntruth: {truth}  decision: {decision}'
        if 'latency_ms' in row:
            label += f"  ({row['latency_ms']:.0f} ms)"
        if row.get('yield_latency_ms'):
            label += '  yield ' + ', '.join(f'{r} {v:.0f} ms' for r, v in row['yield_latency_ms'].items())
        if row.get('false_yield'):
            label += f"  false yield: {row['false_yield']}"
        ax.text(utt.start, y[utt.speaker] + 0.36, label, fontsize=6.5, va='bottom')

    heard = heard_directions(record)
    for s in record.speech:
        ax.broken_barh([(s.start, max(s.end - s.start, 0.02))], (y[s.robot] - 0.3, 0.6),
                       facecolors=KIND_COLOURS.get(s.kind, '#4C72B0'), edgecolor='black', linewidth=0.5,
                       hatch='//' if s.cancelled else None)
        ax.text(s.start, y[s.robot] - 0.42, _short(s.text, 45) + (' [cancelled]' if s.cancelled else ''),
                fontsize=6, va='top')
        target = next((u for u in record.utterances if u.id == attributed(s, record, heard)), None)
        if target is not None:
            ax.annotate('', xy=(s.start, y[s.robot] + 0.3), xytext=(target.end, y[target.speaker] - 0.3),
                        arrowprops=dict(arrowstyle='->', color='#4C72B0', lw=0.8))

    ax.set_yticks([y[n] for n in lanes])
    ax.set_yticklabels([f'{n} (robot)' if n in robots else n for n in lanes])
    ax.set_xlim(0, record.duration_s)
    ax.set_ylim(0.3, len(lanes) + 1.1)
    ax.set_xlabel('time (s)')
    mtr = scored['metrics']
    lat = mtr.get('response_latency_ms') or {}
    ax.set_title(f"{record.name}: addressee {mtr.get('addressee_accuracy')}, response {mtr.get('response_accuracy')}, "
                 f"latency p50 {lat.get('p50')} ms, overlap {mtr.get('robot_overlap_s')} s   "
                 f"(green: right, orange: half right, red: wrong, grey: backchannel; hatched: cancelled)",
                 fontsize=8)
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

