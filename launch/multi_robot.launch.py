"""Every robot of a deployment, each in its own namespace (one robot.launch.py per robot).

    ros2 launch voice_robot multi_robot.launch.py robots:=ada,bruno use_sim_time:=false
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def _robots(context):
    share = get_package_share_directory('voice_robot')
    names = [n.strip() for n in LaunchConfiguration('robots').perform(context).split(',') if n.strip()]
    return [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'robot.launch.py')),
            launch_arguments={
                'robot': name,
                'namespace': name,
                'use_sim_time': LaunchConfiguration('use_sim_time'),
                'deployment': LaunchConfiguration('deployment'),
                'params_file': LaunchConfiguration('params_file'),
                'with_audio_capture': LaunchConfiguration('with_audio_capture'),
                'with_camera': LaunchConfiguration('with_camera'),
            }.items())
        for name in names
    ]


def generate_launch_description():
    share = get_package_share_directory('voice_robot')
    return LaunchDescription([
        DeclareLaunchArgument('robots', default_value='ada,bruno', description='comma-separated robot names'),
        DeclareLaunchArgument('namespace', default_value='', description='unused here: each robot gets its name'),
        DeclareLaunchArgument('robot', default_value='', description='unused here: see robots'),
        DeclareLaunchArgument('use_sim_time', default_value='false'),
        DeclareLaunchArgument('deployment', default_value=os.path.join(share, 'config', 'deployment.yaml')),
        DeclareLaunchArgument('params_file', default_value=os.path.join(share, 'config', 'voice_robot.params.yaml')),
        DeclareLaunchArgument('with_audio_capture', default_value='true'),
        DeclareLaunchArgument('with_camera', default_value='true'),
        OpaqueFunction(function=_robots),
    ])
