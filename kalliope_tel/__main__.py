from kalliope_tel.cli.main import run

run()
