"""ROS 2 node 'audio_capture': publishes the microphone array on 'audio/raw' from the robot's
``audio_in`` (a pyaudio device, or a WAV file for replay). With ``audio_in.backend: sim`` the simulator
publishes 'audio/raw' itself and this node refuses to start (a clear configure error)."""
from __future__ import annotations

from voice_robot.hearing.capture import CaptureError, CaptureStage, make_source


def build(deployment, robot: str, section=None, node=None) -> CaptureStage:
    spec = deployment.robot(robot)
    try:
        source = make_source(spec.audio_in, spec.mic_array.channels, name=spec.name)
    except CaptureError as exc:
        raise RuntimeError(f'audio_capture for {spec.name}: {exc}') from None
    return CaptureStage(source, spec.name)


def main(args=None) -> None:
    from voice_robot.nodes.shell import run_stage_node
    run_stage_node('audio_capture', None, build, args=args)


if __name__ == '__main__':
    main()
