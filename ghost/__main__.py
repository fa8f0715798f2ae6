from ghost.cli.entry import main

main()
