"""Robots, the faces they see and the talkers they hear, built from known geometry (seeing and fusing tests)."""
from voice_robot.config.robots import RobotSpec


def make_robot(name='ada', x=0.0, y=0.0, yaw_deg=0.0, camera=True, hfov_deg=70.0, height_m=1.1, pitch_deg=0.0,
               device=None):
    spec = {'name': name, 'position_m': [x, y], 'yaw_deg': yaw_deg,
            'mic_array': {'layout': 'circular', 'channels': 4, 'radius_m': 0.05, 'height_m': 1.0}}
    if camera:
        spec['camera'] = {'hfov_deg': hfov_deg, 'height_m': height_m, 'pitch_deg': pitch_deg, 'device': device}
    return RobotSpec.model_validate(spec)


def observe_face(robot, face_map, look_at_map, face_id='f1', rng=None, head_noise_deg=0.0, bearing_noise_deg=0.0,
                 mouth_open=0.05, pitch_override_deg=None):
    """The FaceObservation ``robot`` makes of a face at ``face_map`` looking at the map point ``look_at_map``.

    Built from geometry like the simulator does (bearing/elevation/distance from the camera, head and
    gaze as base-frame directions); optional Gaussian noise from a seeded generator.
    """
    import math

    import numpy as np

    from voice_robot import messages as m
    cam_h = robot.camera.height_m if robot.camera is not None else robot.mic_array.height_m
    face = np.asarray(face_map, float)
    rel = robot.map_to_base(face[None])[0] - np.array([0.0, 0.0, cam_h])
    distance = float(np.linalg.norm(rel))
    bearing = math.atan2(rel[1], rel[0])
    elevation = math.atan2(rel[2], math.hypot(rel[0], rel[1]))
    eyes = face + np.array([0.0, 0.0, 0.03])
    d = np.asarray(look_at_map, float) - eyes
    yaw_map = math.atan2(d[1], d[0])
    pitch = math.atan2(d[2], math.hypot(d[0], d[1]))
    if pitch_override_deg is not None:
        pitch = math.radians(pitch_override_deg)
    if rng is not None:
        yaw_map += rng.normal(0.0, math.radians(head_noise_deg))
        pitch += rng.normal(0.0, math.radians(head_noise_deg))
        bearing += rng.normal(0.0, math.radians(bearing_noise_deg))
    yaw_base = yaw_map - robot.yaw
    gaze = (math.cos(pitch) * math.cos(yaw_base), math.cos(pitch) * math.sin(yaw_base), math.sin(pitch))
    return m.FaceObservation(face_id=face_id, bearing=bearing, distance=distance, elevation=elevation,
                             head_yaw=math.remainder(yaw_base, 2 * math.pi), head_pitch=pitch,
                             gaze_direction=gaze, mouth_open=mouth_open, confidence=0.9)


def utterance(robot, source_map, utt_id, start, end, voice_id='', final=True, azimuth_noise_deg=0.0, rng=None):
    """An Utterance as ``robot``'s hearing reports a talker at ``source_map`` (direction from its array)."""
    import math

    from voice_robot import messages as m
    az = robot.bearing_to(source_map)
    if rng is not None:
        az += rng.normal(0.0, math.radians(azimuth_noise_deg))
    return m.Utterance(utterance_id=utt_id, robot=robot.name, start=start, end=end, voice_id=voice_id,
                       azimuth=az, azimuth_std=math.radians(4.0), is_final=final, confidence=0.9, stamp=end)
