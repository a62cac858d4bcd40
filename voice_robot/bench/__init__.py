"""voice_robot.bench"""
