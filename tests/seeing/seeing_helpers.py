"""Helpers shared by the seeing tests."""
from voice_robot.config.robots import RobotSpec


def make_robot(name='ada', x=0.0, y=0.0, yaw_deg=0.0, camera=True, hfov_deg=70.0, height_m=1.1, pitch_deg=0.0,
               device=None):
    spec = {'name': name, 'position_m': [x, y], 'yaw_deg': yaw_deg,
            'mic_array': {'layout': 'circular', 'channels': 4, 'radius_m': 0.05, 'height_m': 1.0}}
    if camera:
        spec['camera'] = {'hfov_deg': hfov_deg, 'height_m': height_m, 'pitch_deg': pitch_deg, 'device': device}
    return RobotSpec.model_validate(spec)
