"""ROS 2 node 'speech': the speech output stage (TTS, playback, cancel) for one robot."""
from __future__ import annotations

from voice_robot.acting.config import SpeechConfig
from voice_robot.acting.playback import make_sink
from voice_robot.acting.speech import SpeechOutputStage


def build(deployment, robot: str, section: SpeechConfig, node=None) -> SpeechOutputStage:
    spec = deployment.robot(robot)
    config = section if section is not None else deployment.speech
    sink = make_sink(spec.audio_out, config.sample_rate)
    # In a ROS node (node given) the timer must keep running while a sentence is synthesised; in the
    # eval (no node) short waits for synthesis are how its time is charged to the simulated clock.
    return SpeechOutputStage(spec, config, sink=sink, synthesis_wait='tick' if node is None else 'none')


def main(args=None) -> None:
    from voice_robot.nodes.shell import run_stage_node
    run_stage_node('speech', 'speech', build, args=args)


if __name__ == '__main__':
    main()
