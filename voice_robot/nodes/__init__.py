"""voice_robot.nodes"""
