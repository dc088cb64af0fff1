from xtune.cli import main

main()
