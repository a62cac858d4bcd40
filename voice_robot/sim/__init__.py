"""voice_robot.sim"""
