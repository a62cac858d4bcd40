"""voice_robot.acting"""
