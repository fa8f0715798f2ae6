from ghost.cli.main import main

main()
