"""The voice-robot command as a new user meets it."""
import subprocess
import sys

from voice_robot.cli import build_parser, main


def test_help_lists_subcommands(repo):
    out = subprocess.run([sys.executable, '-m', 'voice_robot.cli', '--help'], capture_output=True, text=True,
                         cwd=repo, timeout=60)
    assert out.returncode == 0
    for sub in ('up', 'sim', 'eval', 'bench', 'demo', 'check'):
        assert sub in out.stdout


def test_check_reports_invalid_file_with_exit_code(tmp_path, capsys):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('format: voice_robot/deployment@1\nrobots: []\n')
    assert main(['check', str(bad)]) == 1
    err = capsys.readouterr().err
    assert 'bad.yaml' in err and 'robots' in err


def test_check_accepts_bundled_files(repo, capsys):
    assert main(['check', str(repo / 'config' / 'deployment.yaml')]) == 0
    assert 'valid deployment' in capsys.readouterr().out


def test_parser_defaults():
    args = build_parser().parse_args(['eval', 'x.yaml', '--compare'])
    assert args.compare and args.scenarios == ['x.yaml']


def test_eval_rate_needs_ros_and_a_positive_rate(repo):
    scenario = str(repo / 'tests' / 'data' / 'ros_smoke.yaml')
    for argv in (['eval', scenario, '--rate', '0.5'], ['eval', scenario, '--ros', '--rate', '0'],
                 ['eval', scenario, '--ros', '--rate', 'nan']):
        try:
            main(argv)
        except SystemExit as exc:
            assert '--rate needs --ros' in str(exc) and argv[-1] in str(exc)
        else:
            raise AssertionError(f'{argv} ran')
    assert build_parser().parse_args(['eval', scenario, '--ros', '--rate', '0.5']).rate == 0.5
