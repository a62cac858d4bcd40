"""voice_robot: multi-party spoken conversation runtime for groups of robots on ROS 2.

The package reads like the data flow: hearing -> seeing -> fusing -> conversing -> acting, plus sim
(the scenario renderer and closed-loop simulator) and eval (the scorer). Algorithms are plain Python
on numpy arrays and the dataclasses in voice_robot.messages; voice_robot.nodes holds the thin ROS 2
shells around them.
"""
__version__ = '0.1.0'
