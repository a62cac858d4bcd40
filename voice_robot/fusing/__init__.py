"""voice_robot.fusing"""
