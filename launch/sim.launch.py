"""A scenario in the simulator plus every robot it names, on simulated time (Gazebo-free closed loop).

    ros2 launch voice_robot sim.launch.py scenario:=/path/scenario.yaml robots:=ada,bruno rate:=1.0
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory('voice_robot')
    scenario = os.path.join(share, 'sim', 'scenarios', 'demo_table.yaml')
    return LaunchDescription([
        DeclareLaunchArgument('scenario', default_value=scenario, description='voice_robot/scenario@1 file'),
        DeclareLaunchArgument('robots', default_value='ada,bruno', description='robots of the scenario to run'),
        DeclareLaunchArgument('namespace', default_value='', description='unused: each robot gets its name'),
        DeclareLaunchArgument('robot', default_value='', description='unused: see robots'),
        DeclareLaunchArgument('use_sim_time', default_value='true'),
        DeclareLaunchArgument('rate', default_value='1.0', description='simulated seconds per wall second'),
        DeclareLaunchArgument('params_file', default_value=os.path.join(share, 'config', 'voice_robot.params.yaml')),
        Node(package='voice_robot', executable='simulator_node', name='simulator', output='screen',
             parameters=[{'scenario': LaunchConfiguration('scenario'), 'rate': LaunchConfiguration('rate'),
                          'use_sim_time': False}]),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'multi_robot.launch.py')),
            launch_arguments={
                'robots': LaunchConfiguration('robots'),
                'use_sim_time': LaunchConfiguration('use_sim_time'),
                # Nodes read robots, poses and arrays from the scenario itself.
                'deployment': LaunchConfiguration('scenario'),
                'params_file': LaunchConfiguration('params_file'),
                'with_audio_capture': 'false',
                'with_camera': 'false',
            }.items()),
    ])
