"""A scenario through real ROS 2 topics end to end: simulator node, a robot process, the monitor."""
import json
from pathlib import Path

from voice_robot.eval.ros_runner import run_scenario_ros
from voice_robot.eval.runner import RunOptions
from voice_robot.eval.score import score_scenario
from voice_robot.sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / 'data' / 'ros_smoke.yaml'


def test_named_question_is_answered_over_ros(tmp_path):
    record = run_scenario_ros(load_scenario(SCENARIO), options=RunOptions(progress=False), rate=1.0,
                              workdir=tmp_path)
    assert record.extra['transport'] == 'ros2'
    # What the robot published crossed DDS: its utterances, its decisions, its speech in the room.
    assert record.system_utterances, f'no utterance came over ROS; logs in {tmp_path}'
    assert any('france' in u.transcript.lower() for u in record.system_utterances)
    assert record.decisions and record.speech
    scored = score_scenario(record)
    rows = {r['id']: r for r in scored['utterances']}
    assert rows['q1']['responders'] == ['ada'], rows['q1']
    assert scored['metrics']['robot_overlap_s'] == 0.0
    # Where the person looks, as the attention node said it over ROS, scored against the truth.
    assert record.gaze and record.face_humans
    assert scored['metrics']['gaze_target_accuracy'] is not None
    assert (tmp_path / 'ada.log').exists() and (tmp_path / 'truth.json').exists()
    # Each node's counters, as its last /diagnostics said them.
    diagnostics = json.loads((tmp_path / 'diagnostics.json').read_text())
    assert int(diagnostics['/ada/hearing']['utterances final']) >= 1
    float(diagnostics['/ada/hearing']['audio lag max s'])      # how far hearing ran behind its microphones


def test_robots_simulated_on_one_host_share_its_cores(monkeypatch):
    from voice_robot.config.deployment import deployment_for_scenario
    from voice_robot.eval import ros_runner
    demo = Path(__file__).resolve().parents[2] / 'sim' / 'scenarios' / 'demo_table.yaml'
    monkeypatch.setattr(ros_runner.os, 'cpu_count', lambda: 2)
    two_robots = ros_runner.share_host_cores(deployment_for_scenario(load_scenario(demo)))
    assert len(two_robots.robots) == 2 and two_robots.hearing.asr.cpu_threads == 1
    monkeypatch.setattr(ros_runner.os, 'cpu_count', lambda: 16)
    roomy = ros_runner.share_host_cores(deployment_for_scenario(load_scenario(demo)))
    assert roomy.hearing.asr.cpu_threads == 2          # the configured threads: never more
