"""All nodes of one robot in its own namespace.

    ros2 launch voice_robot robot.launch.py robot:=ada namespace:=ada use_sim_time:=false \
        deployment:=/path/deployment.yaml params_file:=/path/voice_robot.params.yaml \
        with_audio_capture:=true with_camera:=true
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# (node name, executable, launched only when this argument is true)
NODES = [
    ('audio_capture', 'audio_capture_node', 'with_audio_capture'),
    ('camera', 'camera_node', 'with_camera'),
    ('face_tracker', 'face_tracker_node', 'with_camera'),
    ('hearing', 'hearing_node', None),
    ('attention', 'attention_node', None),
    ('person_manager', 'person_manager_node', None),
    ('addressee', 'addressee_node', None),
    ('floor', 'floor_node', None),
    ('dialogue', 'dialogue_node', None),
    ('speech', 'speech_node', None),
    ('motion', 'motion_node', None),
]


def generate_launch_description():
    share = get_package_share_directory('voice_robot')
    args = [
        DeclareLaunchArgument('robot', default_value='ada', description='robot name in the deployment file'),
        DeclareLaunchArgument('namespace', default_value=LaunchConfiguration('robot'),
                              description='ROS namespace of this robot (default: its name)'),
        DeclareLaunchArgument('use_sim_time', default_value='false', description='follow /clock'),
        DeclareLaunchArgument('deployment', default_value=os.path.join(share, 'config', 'deployment.yaml'),
                              description='deployment YAML: robots, poses, arrays, backends'),
        DeclareLaunchArgument('params_file', default_value=os.path.join(share, 'config', 'voice_robot.params.yaml'),
                              description='per-node ros__parameters'),
        DeclareLaunchArgument('with_audio_capture', default_value='true',
                              description='start the pyaudio/file capture node (false under the simulator)'),
        DeclareLaunchArgument('with_camera', default_value='true',
                              description='start camera and face tracker (false without a camera or in sim)'),
    ]
    common = {
        'robot': LaunchConfiguration('robot'),
        'deployment_file': LaunchConfiguration('deployment'),
        'use_sim_time': LaunchConfiguration('use_sim_time'),
    }
    nodes = []
    for name, executable, flag in NODES:
        nodes.append(Node(
            package='voice_robot', executable=executable, name=name,
            namespace=LaunchConfiguration('namespace'),
            parameters=[LaunchConfiguration('params_file'), common],
            output='screen', emulate_tty=True,
            condition=IfCondition(LaunchConfiguration(flag)) if flag else None,
        ))
    return LaunchDescription(args + nodes)
