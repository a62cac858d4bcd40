"""voice_robot.eval"""
