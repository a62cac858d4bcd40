"""voice_robot.hearing"""
