from valuecube.cli import main

main()
