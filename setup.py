"""voice_robot: multi-party spoken conversation runtime for ROS 2 (ament_python package)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'voice_robot'

# One console script per ROS node, so `ros2 run voice_robot <node>` and the launch files find them.
NODES = [
    'audio_capture', 'hearing', 'camera', 'face_tracker', 'attention', 'person_manager',
    'addressee', 'floor', 'dialogue', 'speech', 'motion', 'simulator',
]

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, PACKAGE + '.*']),
    package_data={'': ['data/*.yaml', 'data/*.json', 'data/*.npz', 'data/*.joblib']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml')),
        ('share/' + PACKAGE + '/sim/scenarios', glob('sim/scenarios/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='voice_robot maintainers',
    maintainer_email='maintainers@voice-robot.dev',
    description='Multi-party spoken conversation runtime for groups of robots on ROS 2.',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            'voice-robot = voice_robot.cli:main',
        ] + [f'{name}_node = {PACKAGE}.nodes.{name}:main' for name in NODES],
    },
)
