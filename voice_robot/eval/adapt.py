"""Ground truth of the simulator -> the evaluator's records (what scoring and plots read)."""
from __future__ import annotations

from voice_robot.eval.records import HeadTarget, RobotSpeech, TruthUtterance
from voice_robot.sim.truth import GroundTruth


def truth_utterances(truth: GroundTruth) -> list[TruthUtterance]:
    out = []
    for u in truth.utterances:
        to = {'responder_of': u.responder_of} if u.responder_of else u.to
        azimuths = {robot: by_human[u.speaker] for robot, by_human in truth.azimuths.items() if u.speaker in by_human}
        out.append(TruthUtterance(id=u.id, speaker=u.speaker, start=u.start, end=u.end, text=u.text, to=to,
                                  backchannel=u.backchannel, interrupts=u.interrupts, azimuth_by_robot=azimuths))
    return out


def robot_speech(truth: GroundTruth) -> list[RobotSpeech]:
    return [RobotSpeech(robot=s.robot, speech_id=s.speech_id, start=s.start, end=s.end, kind=s.kind, text=s.text,
                        in_reply_to=s.in_reply_to, reply_to_start=s.reply_to_start, reply_to_end=s.reply_to_end,
                        cancelled=s.cancelled) for s in truth.robot_speech]


def face_humans(truth: GroundTruth) -> dict[str, str]:
    """Which human each simulated camera's face id belongs to: '<robot>/<face id>' -> human."""
    return {f'{t.robot}/{t.face_id}': t.human for t in truth.face_tracks}


def head_targets(truth: GroundTruth) -> list[HeadTarget]:
    return [HeadTarget(human=h.human, t=h.t, arrive=h.arrive, target=str(h.target)) for h in truth.head_targets]
