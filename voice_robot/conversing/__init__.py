"""voice_robot.conversing"""
