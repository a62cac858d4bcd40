"""voice_robot.seeing"""
