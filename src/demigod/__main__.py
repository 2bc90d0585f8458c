from demigod.cli import main

main()
