from ghost.cli import main

main()
